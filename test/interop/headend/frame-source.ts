// SPDX-License-Identifier: UNLICENSED
// A host on the tunnel side for interop tests: runs the agent's tunnel client and plays 192.168.10.20
// (MAC 02:00:00:00:00:20) in software. It answers ARP requests and ICMP echo requests for its address,
// resolves 192.168.10.5 by ARP and pings it. Events go to stdout as JSON lines. Not a test file itself.
// Env: CK_HEADEND_URL, CK_KEY, CK_CERT, CK_CA (file paths), CK_PINGS.
import { readFileSync } from 'node:fs';
import { createTunnelClient } from '../../../src/agent/adapters/tunnel-client.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, encodeArp, newArpView, parseArp } from '../../../src/agent/core/l2/arp.js';
import { checksumAdd, checksumFinish } from '../../../src/agent/core/l2/checksum.js';
import { encodeEthernet, newEthernetView, parseEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../../../src/shared/l2/ethernet.js';
import { parseIpv4 } from '../../../src/agent/core/l2/ipv4.js';
import { silentLogger } from '../../../src/shared/log.js';

const MY_MAC = 0x0200_0000_0020;
const MY_IP = parseIpv4('192.168.10.20');
const PEER_IP = parseIpv4('192.168.10.5');
const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};

function ipv4Icmp(srcIp: number, dstIp: number, icmp: Buffer, id: number): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(id & 0xffff, 4);
  ip.writeUInt16BE(0x4000, 6); // DF
  ip[8] = 64;
  ip[9] = 1;
  ip.writeUInt32BE(srcIp >>> 0, 12);
  ip.writeUInt32BE(dstIp >>> 0, 16);
  ip.writeUInt16BE(checksumFinish(checksumAdd(ip, 0, 20)), 10);
  return Buffer.concat([ip, icmp]);
}

function icmpEcho(type: 0 | 8, ident: number, seq: number, data: Buffer): Buffer {
  const icmp = Buffer.alloc(8 + data.length);
  icmp[0] = type;
  icmp.writeUInt16BE(ident, 4);
  icmp.writeUInt16BE(seq, 6);
  data.copy(icmp, 8);
  icmp.writeUInt16BE(checksumFinish(checksumAdd(icmp, 0, icmp.length)), 2);
  return icmp;
}

const link = createTunnelClient({
  headends: [new URL(env('CK_HEADEND_URL'))],
  getIdentity: async () => ({
    key: readFileSync(env('CK_KEY'), 'utf8'),
    cert: readFileSync(env('CK_CERT'), 'utf8'),
    ca: readFileSync(env('CK_CA'), 'utf8'),
  }),
  hello: { agentVersion: 'frame-source', site: 'interop', capabilities: [] },
  keepaliveMs: 500,
  deadAfterMs: 3_000,
  backoff: { initialMs: 100, maxMs: 1_000, jitter: 0.2 },
  sendQueueFrames: 64,
  log: silentLogger,
});

let peerMac: number | null = null;
const eth = newEthernetView();
const arp = newArpView();
link.onFrames((frames) => {
  for (const f of frames) {
    if (parseEthernet(f, eth)) continue;
    if (eth.etherType === ETHERTYPE_ARP && !parseArp(f, eth.l3Offset, arp)) {
      if (arp.op === ARP_OP_REQUEST && arp.targetIp === MY_IP) {
        link.sendFrames([
          encodeArp({ op: ARP_OP_REPLY, senderMac: MY_MAC, senderIp: MY_IP, targetMac: arp.senderMac, targetIp: arp.senderIp }),
        ]);
        emit({ event: 'answered-arp', from: arp.senderIp });
      } else if (arp.op === ARP_OP_REPLY && arp.senderIp === PEER_IP && peerMac === null) {
        peerMac = arp.senderMac;
        emit({ event: 'arp-learned', mac: peerMac.toString(16) });
      }
    } else if (eth.etherType === ETHERTYPE_IPV4 && f[eth.l3Offset + 9] === 1) {
      const l3 = eth.l3Offset;
      const ihl = ((f[l3] ?? 0) & 0x0f) * 4;
      const dst = f.readUInt32BE(l3 + 16);
      const src = f.readUInt32BE(l3 + 12);
      const total = f.readUInt16BE(l3 + 2);
      const icmp = f.subarray(l3 + ihl, l3 + total);
      if (dst !== MY_IP) continue;
      if (icmp[0] === 8) {
        const reply = icmpEcho(0, icmp.readUInt16BE(4), icmp.readUInt16BE(6), Buffer.from(icmp.subarray(8)));
        link.sendFrames([
          encodeEthernet({ dst: eth.src, src: MY_MAC, etherType: ETHERTYPE_IPV4, payload: ipv4Icmp(MY_IP, src, reply, 1) }),
        ]);
        emit({ event: 'answered-echo', seq: icmp.readUInt16BE(6) });
      } else if (icmp[0] === 0 && src === PEER_IP) {
        emit({ event: 'echo-reply', seq: icmp.readUInt16BE(6) });
      }
    }
  }
});

let seq = 0;
/** Echo requests sent in all (CK_PINGS, default 5), across reconnects. */
const PINGS = Number(process.env['CK_PINGS'] ?? 5);
link.onStateChange((s) => {
  emit({ event: 'state', state: s });
  if (s !== 'up') return;
  const timer = setInterval(() => {
    if (link.state !== 'up') return;
    if (peerMac === null) {
      link.sendFrames([encodeArp({ op: ARP_OP_REQUEST, senderMac: MY_MAC, senderIp: MY_IP, targetMac: 0, targetIp: PEER_IP })]);
    } else if (seq < PINGS) {
      seq++;
      const echo = icmpEcho(8, 0x4242, seq, Buffer.alloc(56, 0x61));
      link.sendFrames([
        encodeEthernet({ dst: peerMac, src: MY_MAC, etherType: ETHERTYPE_IPV4, payload: ipv4Icmp(MY_IP, PEER_IP, echo, seq) }),
      ]);
    }
  }, 300);
  timer.unref();
});
process.once('SIGTERM', () => {
  emit({ event: 'status', status: link.status() });
  void link.close().then(() => process.exit(0));
});
link.start();
setInterval(() => {}, 60_000);
