// SPDX-License-Identifier: UNLICENSED
// Our encoders' output, written to a pcap, is accepted by tshark: no malformed packets, no expert info
// above "chat", good IPv4/UDP/ICMPv6 checksums, and the fields tshark dissects are the ones we encoded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeArp, encodeGratuitousArp } from '../../../src/agent/core/l2/arp.js';
import { encodeEthernet, ETHERTYPE_IPV4, ETHERTYPE_QINQ } from '../../../src/shared/l2/ethernet.js';
import { encodeIpv4Udp, parseIpv4 } from '../../../src/agent/core/l2/ipv4.js';
import { encodeNa, encodeNs, parseIpv6 } from '../../../src/agent/core/l2/nd.js';
import { encodeRecord, RecordDecoder } from '../../../src/shared/tunnel/records.js';
import { VXLAN_HEADER_LEN, VXLAN_UDP_PORT, writeVxlanHeader } from '../../../src/shared/l2/vxlan.js';
import { writePcap } from '../../helpers/pcap.js';
import { compareFields, CONTEXT_FIELDS, FIELDS, hasTool, ourFields, tsharkFields } from './frame-fields.js';
import { tempDir } from '../../helpers/tmp.js';
import { skipOrFail } from '../../helpers/skip.js';

const MAC_A = 0x02005e100001;
const MAC_B = 0x02005e100002;
const VTEP_A = 0x02000000ee01;
const VTEP_B = 0x02000000ee02;
const IP_A = parseIpv4('192.0.2.1');
const IP_B = parseIpv4('192.0.2.2');
const IP6_A = parseIpv6('2001:db8::a');
const IP6_B = parseIpv6('2001:db8::b');
const LL_A = parseIpv6('fe80::a');
const BCAST = 'ff:ff:ff:ff:ff:ff';

/** VXLAN-in-UDP/IPv4 with our header, as a kernel VTEP would put it on the wire. */
function vxlanUdp(vni: number, inner: Buffer, udpChecksum = true): Buffer {
  const payload = Buffer.alloc(VXLAN_HEADER_LEN + inner.length);
  writeVxlanHeader(payload, 0, vni);
  inner.copy(payload, VXLAN_HEADER_LEN);
  return outerUdp(payload, udpChecksum);
}

function outerUdp(payload: Buffer, udpChecksum = true): Buffer {
  const ip = encodeIpv4Udp({
    src: parseIpv4('198.51.100.1'),
    dst: parseIpv4('198.51.100.2'),
    srcPort: 49152,
    dstPort: VXLAN_UDP_PORT,
    payload,
    udpChecksum,
  });
  return encodeEthernet({ dst: VTEP_B, src: VTEP_A, etherType: ETHERTYPE_IPV4, payload: ip });
}

interface Case {
  name: string;
  frame: Buffer;
  /** Fields tshark must report, written from what we asked the encoder for (not from our decoder). */
  want: Record<string, string>;
}

function cases(): Case[] {
  const arpReq = encodeArp({ op: 1, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_B });
  const ns = encodeNs({ srcMac: MAC_A, srcIp: IP6_A, targetIp: IP6_B });
  const naSol = encodeNa({
    srcMac: MAC_B,
    srcIp: IP6_B,
    dstIp: IP6_A,
    ethDst: MAC_A,
    targetIp: IP6_B,
    router: false,
    solicited: true,
    override: true,
  });
  const list: Case[] = [
    {
      name: 'ARP request',
      frame: arpReq,
      want: {
        'eth.dst': BCAST,
        'arp.opcode': '1',
        'arp.src.hw_mac': '02:00:5e:10:00:01',
        'arp.src.proto_ipv4': '192.0.2.1',
        'arp.dst.hw_mac': '00:00:00:00:00:00',
        'arp.dst.proto_ipv4': '192.0.2.2',
        'arp.isgratuitous': '',
        'arp.isprobe': '',
      },
    },
    {
      name: 'ARP reply',
      frame: encodeArp({ op: 2, senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_A, targetIp: IP_A }),
      want: {
        'eth.dst': '02:00:5e:10:00:01',
        'eth.src': '02:00:5e:10:00:02',
        'arp.opcode': '2',
        'arp.src.proto_ipv4': '192.0.2.2',
        'arp.dst.hw_mac': '02:00:5e:10:00:01',
        'arp.isgratuitous': '',
      },
    },
    {
      name: 'gratuitous ARP request (announcement)',
      frame: encodeGratuitousArp(MAC_A, IP_A),
      want: {
        'eth.dst': BCAST,
        'arp.opcode': '1',
        'arp.src.proto_ipv4': '192.0.2.1',
        'arp.dst.proto_ipv4': '192.0.2.1',
        'arp.isgratuitous': '1',
        'arp.isannouncement': '1',
      },
    },
    {
      name: 'gratuitous ARP reply',
      frame: encodeGratuitousArp(MAC_A, IP_A, 2),
      want: { 'eth.dst': BCAST, 'arp.opcode': '2', 'arp.dst.hw_mac': '02:00:5e:10:00:01', 'arp.isgratuitous': '1' },
    },
    {
      name: 'ARP probe',
      frame: encodeArp({ op: 1, senderMac: MAC_A, senderIp: 0, targetMac: 0, targetIp: IP_B }),
      want: {
        'eth.dst': BCAST,
        'arp.opcode': '1',
        'arp.src.proto_ipv4': '0.0.0.0',
        'arp.dst.proto_ipv4': '192.0.2.2',
        'arp.isprobe': '1',
        'arp.isgratuitous': '',
      },
    },
    {
      name: 'ARP in 802.1Q',
      frame: encodeArp({ op: 1, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_B, vlans: [{ tci: (3 << 13) | 100 }] }),
      want: { 'vlan.id': '100', 'vlan.priority': '3', 'arp.opcode': '1' },
    },
    {
      name: 'ARP in QinQ (802.1ad + 802.1Q)',
      frame: encodeArp({
        op: 2,
        senderMac: MAC_B,
        senderIp: IP_B,
        targetMac: MAC_A,
        targetIp: IP_A,
        vlans: [{ tpid: ETHERTYPE_QINQ, tci: 300 }, { tci: 20 }],
      }),
      want: { 'eth.type': '0x88a8', 'ieee8021ad.id': '300', 'vlan.id': '20', 'arp.opcode': '2' },
    },
    {
      name: 'NS',
      frame: ns,
      want: {
        'eth.dst': '33:33:ff:00:00:0b',
        'ipv6.src': '2001:db8::a',
        'ipv6.dst': 'ff02::1:ff00:b',
        'ipv6.hlim': '255',
        'icmpv6.type': '135',
        'icmpv6.checksum.status': '1',
        'icmpv6.nd.ns.target_address': '2001:db8::b',
        'icmpv6.opt.type': '1',
        'icmpv6.opt.linkaddr': '02:00:5e:10:00:01',
      },
    },
    {
      name: 'DAD NS',
      frame: encodeNs({ srcMac: MAC_A, srcIp: parseIpv6('::'), targetIp: IP6_A }),
      want: {
        'ipv6.src': '::',
        'ipv6.dst': 'ff02::1:ff00:a',
        'icmpv6.type': '135',
        'icmpv6.checksum.status': '1',
        'icmpv6.nd.ns.target_address': '2001:db8::a',
        'icmpv6.opt.type': '',
      },
    },
    {
      name: 'solicited NA',
      frame: naSol,
      want: {
        'eth.dst': '02:00:5e:10:00:01',
        'ipv6.dst': '2001:db8::a',
        'icmpv6.type': '136',
        'icmpv6.checksum.status': '1',
        'icmpv6.nd.na.flag.r': '0',
        'icmpv6.nd.na.flag.s': '1',
        'icmpv6.nd.na.flag.o': '1',
        'icmpv6.nd.na.target_address': '2001:db8::b',
        'icmpv6.opt.type': '2',
        'icmpv6.opt.linkaddr': '02:00:5e:10:00:02',
      },
    },
    {
      name: 'unsolicited NA from a router',
      frame: encodeNa({ srcMac: MAC_A, srcIp: LL_A, targetIp: IP6_A, router: true, solicited: false, override: true }),
      want: {
        'eth.dst': '33:33:00:00:00:01',
        'ipv6.src': 'fe80::a',
        'ipv6.dst': 'ff02::1',
        'icmpv6.checksum.status': '1',
        'icmpv6.nd.na.flag.r': '1',
        'icmpv6.nd.na.flag.s': '0',
        'icmpv6.nd.na.flag.o': '1',
      },
    },
    {
      name: 'NS in 802.1Q',
      frame: encodeNs({ srcMac: MAC_A, srcIp: IP6_A, targetIp: IP6_B, vlans: [{ tci: 7 }] }),
      want: { 'vlan.id': '7', 'icmpv6.type': '135', 'icmpv6.checksum.status': '1' },
    },
    {
      name: 'VXLAN/UDP carrying ARP',
      frame: vxlanUdp(4242, arpReq),
      want: {
        'udp.dstport': '4789',
        'udp.checksum.status': '1',
        'ip.checksum.status': '1',
        'vxlan.vni': '4242',
        'vxlan.flag_i': '1',
        'vxlan.flags': '0x0800',
        'vxlan.flags_reserved': '0x0000',
        'vxlan.gbp': '0',
        'vxlan.reserved8': '0',
        'arp.opcode': '1',
        'eth.type': '0x0800,0x0806',
      },
    },
    {
      name: 'VXLAN/UDP (zero UDP checksum) carrying an NS, highest VNI',
      frame: vxlanUdp(0xffffff, ns, false),
      want: {
        'udp.checksum.status': '3' /* not present: RFC 7348 allows 0 over IPv4 */,
        'vxlan.vni': '16777215',
        'icmpv6.type': '135',
        'icmpv6.checksum.status': '1',
        'eth.type': '0x0800,0x86dd',
      },
    },
  ];
  // Stream records: the bytes after the u16 length are exactly a VXLAN header and the frame, so they are
  // valid VXLAN/UDP payload; also round-tripped through the decoder first.
  for (const [vni, inner] of [
    [1, naSol],
    [70000, encodeGratuitousArp(MAC_B, IP_B)],
  ] as const) {
    const rec = encodeRecord(vni, inner);
    assert.equal(rec.readUInt16BE(0), rec.length - 2);
    let got: Buffer | undefined;
    new RecordDecoder((v, f) => {
      assert.equal(v, vni);
      got = Buffer.from(f);
    }, assert.fail).push(rec);
    assert.deepEqual(got, inner);
    list.push({
      name: `stream record vni ${vni} as VXLAN/UDP`,
      frame: outerUdp(rec.subarray(2)),
      want: {
        'vxlan.vni': String(vni),
        'vxlan.flag_i': '1',
        'vxlan.flags': '0x0800',
        'vxlan.reserved8': '0',
        'udp.checksum.status': '1',
        'udp.length': String(8 + rec.length - 2),
      },
    });
  }
  return list;
}

// tshark severities: chat 0x00200000, note 0x00400000, warn 0x00600000, error 0x00800000.
const SEVERITY_NOTE = 0x00400000;

test('tshark accepts every frame our encoders build and reads back what we encoded', async (t) => {
  if (!(await hasTool('tshark'))) return skipOrFail(t, 'tshark is not installed');
  const dir = tempDir(t, 'ck-l2-enc-').dir;
  const all = cases();
  const path = join(dir, 'ours.pcap');
  writeFileSync(path, writePcap(all.map((c) => c.frame)));
  const wantKeys = [...new Set(all.flatMap((c) => Object.keys(c.want)))];
  const extra = [
    '_ws.malformed',
    '_ws.expert.severity',
    '_ws.expert.message',
    'ip.checksum.status',
    'udp.checksum.status',
    'icmpv6.checksum.status',
  ];
  const fields = [...new Set([...CONTEXT_FIELDS, ...FIELDS, ...wantKeys, ...extra])];
  const rows = await tsharkFields(path, fields);
  assert.equal(rows.length, all.length);
  const problems: string[] = [];
  all.forEach((c, i) => {
    const row = rows[i] ?? {};
    if (row['_ws.malformed'] !== '') problems.push(`${c.name}: malformed (${row['_ws.expert.message']})`);
    const sev = (row['_ws.expert.severity'] ?? '').split(',').filter(Boolean).map(Number);
    if (sev.some((s) => s >= SEVERITY_NOTE)) problems.push(`${c.name}: expert info ${row['_ws.expert.message']}`);
    for (const k of ['ip.checksum.status', 'udp.checksum.status', 'icmpv6.checksum.status']) {
      // 1 = good; 3 = not present (a zero UDP checksum we asked for, checked through `want`).
      if ((row[k] ?? '').split(',').some((s) => s !== '' && s !== '1' && s !== '3')) problems.push(`${c.name}: ${k} = ${row[k]}`);
    }
    for (const [k, v] of Object.entries(c.want)) {
      if (row[k] !== v) problems.push(`${c.name}: ${k} tshark ${JSON.stringify(row[k])} encoded ${JSON.stringify(v)}`);
    }
    // And our own decoders read the same frames as tshark does.
    problems.push(...compareFields(i + 1, ourFields(c.frame), row).map((p) => `${c.name}: ${p}`));
  });
  assert.deepEqual(problems, []);
  t.diagnostic(`${all.length} encoded frames accepted by tshark`);
});

test('tshark -z expert,error reports nothing for our frames', async (t) => {
  if (!(await hasTool('tshark'))) return skipOrFail(t, 'tshark is not installed');
  const dir = tempDir(t, 'ck-l2-enc-').dir;
  const path = join(dir, 'ours.pcap');
  writeFileSync(path, writePcap(cases().map((c) => c.frame)));
  const { exec } = await import('../../../src/shared/exec.js');
  const r = await exec('tshark', ['-r', path, '-q', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-z', 'expert,warn']);
  // The stats block lists "Errors (n)" / "Warns (n)" sections only when there is something to report.
  assert.doesNotMatch(r.stdout, /Errors \(\d+\)|Warns \(\d+\)|Malformed/i, r.stdout);
});
