// SPDX-License-Identifier: UNLICENSED
// Known-answer tests against frames the Linux kernel produced: ARP request/reply/gratuitous, NS (also DAD)
// and NA (solicited and unsolicited), and VXLAN (kernel vxlan device, UDP 4789) carrying ARP, ICMP and ND.
// The kernel must also accept what we send: probe, ARP request, GARP, NS, unsolicited NA, DAD NS, and one
// of our stream records (minus its length prefix) as VXLAN/UDP payload into its vxlan device.
// Our decoders and tshark must agree field by field on every frame. The live part needs root; the
// committed fixture (test/fixtures/l2/kernel-frames.pcap) is checked everywhere tshark exists and is
// rewritten from the live capture when CK_UPDATE_FIXTURES=1.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { encodeArp } from '../../../src/agent/core/l2/arp.js';
import { parseIpv4 } from '../../../src/agent/core/l2/ipv4.js';
import { encodeRecord } from '../../../src/shared/tunnel/records.js';
import { macKeyAt } from '../../../src/shared/l2/mac.js';
import { encodeNa, encodeNs, parseIpv6 } from '../../../src/agent/core/l2/nd.js';
import { isRoot, netnsScope } from '../../helpers/netns.js';
import { readPcap } from '../../helpers/pcap.js';
import { compareFields, CONTEXT_FIELDS, FIELDS, hasTool, ourFields, tsharkFields } from './frame-fields.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/l2/kernel-frames.pcap', import.meta.url));

const MAC_A = '02:00:00:00:aa:01';
const MAC_A2 = '02:00:00:00:aa:02';
const MAC_B = '02:00:00:00:bb:01';
const MAC_VXA = '02:00:00:00:aa:42';
const MAC_VXB = '02:00:00:00:bb:42';
const VNI = 4242;
/** Addresses our own frames claim, to check that the kernel accepted them. */
const OUR_MAC = 0x02000000aa09;
const OUR_IP = '10.99.0.9';
const OUR_GARP_MAC = 0x02000000aa07;
const OUR_GARP_IP = '10.99.0.7';
const OUR_IP6 = 'fd99::9';
const OUR_NA_IP6 = 'fd99::7';
const OUR_VX_MAC = 0x02000000aa0b;
const OUR_VX_IP = '10.98.0.11';

/** Frame classes the kernel must have produced (kernel-only: none of them comes from our encoders). */
const KERNEL_CLASSES = [
  'arp:request',
  'arp:reply',
  'arp:gratuitous',
  'nd:ns',
  'nd:dad-ns',
  'nd:na-solicited',
  'nd:na-unsolicited',
  `vxlan:${VNI} arp:request`,
  `vxlan:${VNI} arp:reply`,
  `vxlan:${VNI} ipv4:1`,
  `vxlan:${VNI} nd:ns`,
  `vxlan:${VNI} nd:na-solicited`,
];

interface Verified {
  frames: number;
  byClass: Map<string, number>;
  /** The same, counting only frames the kernel sent (not the ones our encoders injected). */
  kernelByClass: Map<string, number>;
}

/** Source MACs of the frames our encoders inject (outer or inner). */
const OUR_SOURCES = new Set([OUR_MAC, OUR_GARP_MAC, OUR_VX_MAC]);
const isOurs = (frame: Buffer): boolean =>
  (ourFields(frame).fields['eth.src'] ?? '')
    .split(',')
    .some((m) => OUR_SOURCES.has(macKeyAt(Buffer.from(m.replaceAll(':', ''), 'hex'), 0)));

/** Decodes every frame of a capture both ways and asserts agreement; returns class counts. */
async function verifyCapture(path: string): Promise<Verified> {
  const pcap = readPcap(readFileSync(path));
  assert.equal(pcap.linkType, 1, 'capture must be Ethernet');
  const theirs = await tsharkFields(path, [...CONTEXT_FIELDS, ...FIELDS]);
  assert.equal(theirs.length, pcap.records.length, 'tshark and our reader see the same number of frames');
  const problems: string[] = [];
  const byClass = new Map<string, number>();
  const kernelByClass = new Map<string, number>();
  pcap.records.forEach((rec, i) => {
    const ours = ourFields(rec.data);
    const cls = ours.classes.join(' ');
    byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
    if (!isOurs(rec.data)) kernelByClass.set(cls, (kernelByClass.get(cls) ?? 0) + 1);
    if (ours.classes.some((c) => c.startsWith('drop:'))) problems.push(`frame ${i + 1}: we dropped a kernel frame: ${cls}`);
    problems.push(...compareFields(i + 1, ours, theirs[i] ?? {}));
  });
  assert.deepEqual(problems, []);
  return { frames: pcap.records.length, byClass, kernelByClass };
}

/** Classes in a capture that tcpdump may still be writing (a torn last record is ignored). */
function capturedKernelClasses(path: string): string[] {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return [];
  }
  const out = new Set<string>();
  let off = 24;
  while (file.length >= 24 && off + 16 <= file.length) {
    const len = file.readUInt32LE(off + 8);
    if (off + 16 + len > file.length) break;
    const frame = file.subarray(off + 16, off + 16 + len);
    const cls = ourFields(frame).classes.join(' ');
    out.add(isOurs(frame) ? `ours ${cls}` : cls);
    if (cls === 'arp:probe') out.add(cls);
    off += 16 + len;
  }
  return [...out];
}

function assertKernelClasses(v: Verified): void {
  const missing = KERNEL_CLASSES.filter((c) => !v.kernelByClass.has(c));
  assert.deepEqual(missing, [], `kernel frame classes seen: ${[...v.kernelByClass.keys()].join(' | ')}`);
}

const tools = async (...names: string[]): Promise<string | false> => {
  for (const n of names) if (!(await hasTool(n))) return `${n} is not installed`;
  return false;
};

test('committed kernel capture: our decoders agree with tshark on every frame', async (t) => {
  const skip = await tools('tshark');
  if (skip) return skipOrFail(t, skip);
  const v = await verifyCapture(FIXTURE);
  assertKernelClasses(v);
  assert.ok(v.byClass.has('arp:probe'), 'the fixture holds the probe we injected');
  t.diagnostic(`${v.frames} frames: ${[...v.byClass].map(([c, n]) => `${c}=${n}`).join(', ')}`);
});

// Small traffic generator run inside a namespace: UDP to a closed port (the reply is an ICMP error, and
// resolving the destination makes the kernel send ARP or NS), or raw frames given as hex lines on stdin.
const PY = `
import socket, sys
mode = sys.argv[1]
if mode == 'udp4':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'ck', (sys.argv[2], 9))
elif mode == 'udp6':
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.sendto(b'ck', (sys.argv[2], 9))
elif mode == 'udp4hex':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[2], int(sys.argv[3])))
elif mode == 'raw':
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[2], 0))
    for line in sys.stdin:
        if line.strip(): s.send(bytes.fromhex(line.strip()))
`;
import { tempDir } from '../../helpers/tmp.js';
import { skipOrFail } from '../../helpers/skip.js';

const py = (ns: string, args: string[], input?: string): Promise<unknown> =>
  nsExec(ns, 'python3', ['-c', PY, ...args], input === undefined ? {} : { input });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sysctl(ns: string, ...kv: string[]): Promise<void> {
  for (const s of kv) await nsExec(ns, 'sysctl', ['-q', '-w', s], { allowFailure: true });
}

async function waitDad(ns: string, dev: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await ipIn(ns, '-6', 'addr', 'show', 'dev', dev, 'tentative');
    if (r.stdout.trim() === '') return;
    await sleep(100);
  }
  throw new Error(`DAD did not finish on ${dev} in ${ns}`);
}

function startTcpdump(t: TestContext, ns: string, dev: string, out: string): Promise<ChildProcess> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-w', out, '-U', '-s', '0', '-n', '-Z', 'root', '--immediate-mode'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 5000);
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${err}`));
    });
  });
}

async function stopTcpdump(child: ChildProcess): Promise<void> {
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  await done;
}

test('live: the kernel emits ARP, ND and VXLAN frames that we decode as tshark does, and accepts ours', async (t) => {
  if (!isRoot()) return skipOrFail(t, 'needs root for network namespaces');
  const skip = await tools('tshark', 'tcpdump', 'python3', 'sysctl');
  if (skip) return skipOrFail(t, skip);
  const scope = netnsScope(t, 'ckl2');
  const dir = tempDir(t, 'ck-l2-kernel-').dir;
  const pcapPath = join(dir, 'kernel.pcap');
  const A = await scope.ns('a');
  const B = await scope.ns('b');

  await ipIn(A, 'link', 'add', 'va', 'address', MAC_A, 'type', 'veth', 'peer', 'name', 'vb', 'address', MAC_B, 'netns', B);
  const quiet = (dev: string): string[] => [`net.ipv6.conf.${dev}.router_solicitations=0`, `net.ipv6.conf.${dev}.retrans_time_ms=100`];
  await sysctl(A, ...quiet('va'), 'net.ipv4.conf.va.arp_notify=1', 'net.ipv6.conf.va.ndisc_notify=1');
  // arp_accept / accept_untracked_na let B learn from unsolicited announcements: that is how we see the
  // kernel accepted our gratuitous ARP and unsolicited NA.
  // (untracked NAs are only learned by routers, hence forwarding on B.)
  await sysctl(
    B,
    ...quiet('vb'),
    'net.ipv4.conf.vb.arp_accept=1',
    'net.ipv6.conf.vb.forwarding=1',
    'net.ipv6.conf.vb.accept_untracked_na=1',
  );
  await ipIn(A, 'addr', 'add', '10.99.0.1/24', 'dev', 'va');
  await ipIn(A, 'addr', 'add', 'fd99::1/64', 'dev', 'va');
  await ipIn(B, 'addr', 'add', '10.99.0.2/24', 'dev', 'vb');
  await ipIn(B, 'addr', 'add', 'fd99::2/64', 'dev', 'vb');
  await ipIn(B, 'link', 'set', 'vb', 'up');
  const dump = await startTcpdump(t, B, 'vb', pcapPath);

  // Link up: DAD NS from :: for each address, a GARP (arp_notify), unsolicited NA after DAD (ndisc_notify).
  await ipIn(A, 'link', 'set', 'va', 'up');
  await waitDad(A, 'va');
  await waitDad(B, 'vb');
  // Resolution: ARP request/reply and NS/NA (solicited), then ICMP port unreachable back.
  await py(A, ['udp4', '10.99.0.2']);
  await py(A, ['udp6', 'fd99::2']);
  // A MAC change: another GARP and unsolicited NAs with override.
  await ipIn(A, 'link', 'set', 'va', 'address', MAC_A2);
  await sleep(200);

  // Our frames, sent raw from A: a probe for B's address (B answers it), an ARP request and an NS from
  // addresses B has never seen (B learns them), a GARP reply and an unsolicited NA (B learns them because
  // of arp_accept/accept_untracked_na), and a DAD NS for B's own address (B defends it with an NA).
  const ours = [
    encodeArp({ op: 1, senderMac: OUR_MAC, senderIp: 0, targetMac: 0, targetIp: parseIpv4('10.99.0.2') }),
    encodeArp({ op: 1, senderMac: OUR_MAC, senderIp: parseIpv4(OUR_IP), targetMac: 0, targetIp: parseIpv4('10.99.0.2') }),
    encodeArp({
      op: 2,
      senderMac: OUR_GARP_MAC,
      senderIp: parseIpv4(OUR_GARP_IP),
      targetMac: OUR_GARP_MAC,
      targetIp: parseIpv4(OUR_GARP_IP),
      ethDst: 0xffffffffffff,
    }),
    encodeNs({ srcMac: OUR_MAC, srcIp: parseIpv6(OUR_IP6), targetIp: parseIpv6('fd99::2') }),
    encodeNa({
      srcMac: OUR_GARP_MAC,
      srcIp: parseIpv6(OUR_NA_IP6),
      targetIp: parseIpv6(OUR_NA_IP6),
      router: false,
      solicited: false,
      override: true,
    }),
    encodeNs({ srcMac: OUR_MAC, srcIp: parseIpv6('::'), targetIp: parseIpv6('fd99::2') }),
  ];
  await py(A, ['raw', 'va'], ours.map((f) => f.toString('hex')).join('\n') + '\n');
  await sleep(300);

  // VXLAN: kernel vxlan devices on UDP 4789 over the veth, carrying ARP, ICMP and ND.
  for (const [ns, dev, mac, local, remote, under] of [
    [A, 'vxa', MAC_VXA, '10.99.0.1', '10.99.0.2', 'va'],
    [B, 'vxb', MAC_VXB, '10.99.0.2', '10.99.0.1', 'vb'],
  ] as const) {
    await ipIn(
      ns,
      'link',
      'add',
      dev,
      'address',
      mac,
      'type',
      'vxlan',
      'id',
      String(VNI),
      'dstport',
      '4789',
      'local',
      local,
      'remote',
      remote,
      'dev',
      under,
    );
    await ipIn(ns, 'link', 'set', dev, 'addrgenmode', 'none');
    await sysctl(ns, ...quiet(dev));
    await ipIn(ns, 'addr', 'add', ns === A ? '10.98.0.1/24' : '10.98.0.2/24', 'dev', dev);
    await ipIn(ns, 'addr', 'add', ns === A ? 'fd98::1/64' : 'fd98::2/64', 'dev', dev, 'nodad');
    await ipIn(ns, 'link', 'set', dev, 'up');
  }
  await py(A, ['udp4', '10.98.0.2']);
  await py(A, ['udp6', 'fd98::2']);
  // One of our stream records minus its length prefix, sent as a UDP/4789 payload: B's kernel vxlan
  // device must take it as VXLAN (it learns the inner sender and answers through the tunnel).
  const innerArp = encodeArp({
    op: 1,
    senderMac: OUR_VX_MAC,
    senderIp: parseIpv4(OUR_VX_IP),
    targetMac: 0,
    targetIp: parseIpv4('10.98.0.2'),
  });
  await py(A, ['udp4hex', '10.99.0.2', '4789', encodeRecord(VNI, innerArp).subarray(2).toString('hex')]);
  // Wait until everything we expect is in the capture (tcpdump -U writes each packet as it comes) rather
  // than for a fixed time: a loaded CI machine may need longer.
  const deadline = Date.now() + 15_000;
  let have: string[] = [];
  for (;;) {
    have = capturedKernelClasses(pcapPath);
    const pending = [...KERNEL_CLASSES, 'arp:probe'].filter((c) => !have.includes(c));
    if (pending.length === 0 || Date.now() > deadline) break;
    await sleep(100);
  }
  await sleep(100);
  await stopTcpdump(dump);

  const v = await verifyCapture(pcapPath);
  assertKernelClasses(v);
  t.diagnostic(`${v.frames} frames: ${[...v.byClass].map(([c, n]) => `${c}=${n}`).join(', ')}`);

  // The kernel accepted our frames: it learned the addresses they claimed.
  const neigh = async (fam: string, dev: string, want: string): Promise<string> => {
    let out = '';
    for (let i = 0; i < 30; i++) {
      out = (await ipIn(B, fam, 'neigh', 'show', 'dev', dev)).stdout;
      if (out.includes(want)) break;
      await sleep(100);
    }
    return out;
  };
  const n4 = await neigh('-4', 'vb', OUR_GARP_IP);
  const n6 = await neigh('-6', 'vb', OUR_NA_IP6);
  assert.match(n4, new RegExp(`^${OUR_IP.replaceAll('.', '\\.')} lladdr 02:00:00:00:aa:09`, 'm'), n4);
  assert.match(n4, new RegExp(`^${OUR_GARP_IP.replaceAll('.', '\\.')} lladdr 02:00:00:00:aa:07`, 'm'), n4);
  assert.match(n6, new RegExp(`^${OUR_IP6} lladdr 02:00:00:00:aa:09`, 'm'), n6);
  if (existsSync('/proc/sys/net/ipv6/conf/default/accept_untracked_na')) {
    assert.match(n6, new RegExp(`^${OUR_NA_IP6} lladdr 02:00:00:00:aa:07`, 'm'), n6);
  }
  const nvx = await neigh('-4', 'vxb', OUR_VX_IP);
  assert.match(nvx, new RegExp(`^${OUR_VX_IP.replaceAll('.', '\\.')} lladdr 02:00:00:00:aa:0b`, 'm'), nvx);
  assert.ok(v.byClass.has(`vxlan:${VNI} arp:request`));
  // ... and answered the probe (reply to 0.0.0.0) and the DAD NS (NA to all-nodes defending fd99::2).
  assert.ok(v.byClass.has('arp:probe'));

  if (process.env['CK_UPDATE_FIXTURES'] === '1') {
    copyFileSync(pcapPath, FIXTURE);
    t.diagnostic(`fixture rewritten: ${FIXTURE}`);
  }
});
