// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { L2Policy, type FrameSide, type PolicyDecision } from '../../../../../src/agent/core/l2/policy.js';
import { policyConfig, type PolicyConfigOverrides } from '../../../../../src/agent/core/l2/policy-config.js';
import {
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  encodeArp,
  encodeGratuitousArp,
  newArpView,
  parseArp,
} from '../../../../../src/agent/core/l2/arp.js';
import { encodeEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6, newEthernetView, parseEthernet } from '../../../../../src/shared/l2/ethernet.js';
import { encodeIpv4Udp, parseIpv4 } from '../../../../../src/agent/core/l2/ipv4.js';
import { encodeNa, encodeNs, ipv6ToString, IPV6_UNSPECIFIED, newNdView, parseIpv6, parseNd } from '../../../../../src/agent/core/l2/nd.js';
import { BROADCAST_MAC_KEY, BPDU_MAC_KEY } from '../../../../../src/shared/l2/mac.js';
import { ipv6Key } from '../../../../../src/agent/core/l2/neighbour-table.js';
import { countersToMetrics, POLICY_DROPS, totalDrops } from '../../../../../src/agent/core/l2/counters.js';

const HOST = 0x02_00_00_00_00_11; // LAN host
const HOST2 = 0x02_00_00_00_00_12; // another LAN host
const VM = 0x02_00_00_00_00_22; // recovered VM in the DC
const VM2 = 0x02_00_00_00_00_23;
const OWN = 0x02_00_00_00_00_99; // the Connector's br-lan MAC
const HOST_IP = parseIpv4('192.0.2.20');
const HOST2_IP = parseIpv4('192.0.2.21');
const VM_IP = parseIpv4('192.0.2.5');
const OWN_IP = parseIpv4('192.0.2.2');
const HOST6 = parseIpv6('fd00::20');
const VM6 = parseIpv6('fd00::5');

function policy(o: PolicyConfigOverrides = {}): L2Policy {
  return new L2Policy(policyConfig({ ownMacs: [OWN], ownIpv4: [OWN_IP], ...o }));
}

const arpRequest = (senderMac: number, senderIp: number, targetIp: number, ethDst = BROADCAST_MAC_KEY): Buffer =>
  encodeArp({ op: ARP_OP_REQUEST, senderMac, senderIp, targetMac: 0, targetIp, ethDst });
const arpReply = (senderMac: number, senderIp: number, targetMac: number, targetIp: number): Buffer =>
  encodeArp({ op: ARP_OP_REPLY, senderMac, senderIp, targetMac, targetIp });
const arpProbe = (senderMac: number, targetIp: number): Buffer =>
  encodeArp({ op: ARP_OP_REQUEST, senderMac, senderIp: 0, targetMac: 0, targetIp });
const data = (src: number, dst: number, size = 100): Buffer =>
  encodeEthernet({
    dst,
    src,
    etherType: ETHERTYPE_IPV4,
    payload: encodeIpv4Udp({ src: HOST_IP, dst: VM_IP, srcPort: 1000, dstPort: 2000, payload: Buffer.alloc(size) }),
  });
const udp = (src: number, dst: number, srcIp: number, dstIp: number, sp: number, dp: number): Buffer =>
  encodeEthernet({
    dst,
    src,
    etherType: ETHERTYPE_IPV4,
    payload: encodeIpv4Udp({ src: srcIp, dst: dstIp, srcPort: sp, dstPort: dp, payload: Buffer.alloc(20) }),
  });

function expect(d: PolicyDecision, action: PolicyDecision['action'], reason: string | null = null): void {
  assert.equal(d.action, action, `action (reason ${d.reason})`);
  assert.equal(d.reason, reason);
}

/** Teaches the policy that VM_IP lives in the DC (an ARP reply from the VM crossing the tunnel). */
function learnRemoteVm(p: L2Policy, now: number): void {
  expect(p.decide(arpReply(VM, VM_IP, HOST, HOST_IP), 'tunnel', now), 'lan');
}

// --- MAC learning and local unicast -------------------------------------------------------------------

test('learns source MACs per side; LAN unicast to a local MAC is not tunnelled', () => {
  const p = policy();
  expect(p.decide(data(HOST, BROADCAST_MAC_KEY), 'lan', 0), 'tunnel');
  expect(p.decide(data(HOST2, HOST), 'lan', 1), 'drop', 'local-unicast');
  expect(p.decide(data(VM, HOST), 'tunnel', 2), 'lan');
  assert.equal(p.macs.lookup(HOST, 3)?.side, 'lan');
  assert.equal(p.macs.lookup(VM, 3)?.side, 'tunnel');
  expect(p.decide(data(HOST, VM), 'lan', 3), 'tunnel');
  expect(p.decide(data(HOST, 0x02_00_00_00_00_77), 'lan', 3), 'tunnel'); // unknown unicast floods
  // After aging, HOST is unknown again and its unicast crosses (flooded as unknown unicast).
  expect(p.decide(data(HOST2, HOST), 'lan', 300_003), 'tunnel');
});

test('the decision object is reused and frames from a MAC frozen on the other side are dropped', () => {
  const p = policy({ macMoveThreshold: 2 });
  const d1 = p.decide(data(HOST, VM), 'lan', 0);
  expect(p.decide(data(HOST, VM), 'tunnel', 1), 'lan'); // move 1
  const d2 = p.decide(data(HOST, VM), 'lan', 2); // move 2: frozen, pinned local
  assert.equal(d1, d2);
  expect(p.decide(data(HOST, VM), 'tunnel', 3), 'drop', 'mac-frozen');
  assert.ok(p.alarms.isActive('mac-move-frozen', '02:00:00:00:00:11'));
  expect(p.decide(data(HOST, VM), 'lan', 4), 'tunnel');
});

test('multicast or zero source MACs are dropped', () => {
  const p = policy();
  expect(p.decide(data(0x01_00_5e_00_00_01, HOST), 'lan', 0), 'drop', 'bad-src-mac');
  expect(p.decide(data(0, HOST), 'tunnel', 0), 'drop', 'bad-src-mac');
});

// --- ARP proxy --------------------------------------------------------------------------------------------

test('ARP proxy answers a LAN request for a fresh remote binding, with a correct reply', () => {
  const p = policy();
  learnRemoteVm(p, 0);
  const d = p.decide(arpRequest(HOST, HOST_IP, VM_IP), 'lan', 1000);
  expect(d, 'reply');
  assert.equal(d.replyToward, 'lan');
  assert.equal(d.replies.length, 1);
  const f = d.replies[0] ?? Buffer.alloc(0);
  const eth = newEthernetView();
  assert.equal(parseEthernet(f, eth), null);
  assert.equal(eth.dst, HOST);
  assert.equal(eth.src, VM);
  const a = newArpView();
  assert.equal(parseArp(f, eth.l3Offset, a), null);
  assert.deepEqual([a.kind, a.senderMac, a.senderIp, a.targetMac, a.targetIp], ['reply', VM, VM_IP, HOST, HOST_IP]);
  assert.equal(p.counters.events['arp-proxied'], 1);
  assert.equal(p.counters.fromLan.answered, 1);
});

test('ARP proxy never answers for a local target, a stale remote target or an unknown one', () => {
  const p = policy({ proxyFreshMs: 60_000 });
  // Local target: HOST2 announced itself on the LAN; a request for it is not answered.
  p.decide(arpRequest(HOST2, HOST2_IP, HOST_IP), 'lan', 0);
  assert.notEqual(p.decide(arpRequest(HOST, HOST_IP, HOST2_IP), 'lan', 1).action, 'reply');
  // Stale remote target: learned at 0, asked about 60 s later.
  learnRemoteVm(p, 0);
  expect(p.decide(arpRequest(HOST, HOST_IP, VM_IP), 'lan', 60_000), 'tunnel');
  // Unknown target: a miss, crosses the tunnel.
  expect(p.decide(arpRequest(HOST, HOST_IP, parseIpv4('192.0.2.99')), 'lan', 60_001), 'tunnel');
  assert.equal(p.counters.events['arp-proxied'], 0);
  // A unicast (refresh) request is never proxied: it goes to the real host.
  learnRemoteVm(p, 70_000);
  expect(p.decide(arpRequest(HOST, HOST_IP, VM_IP, VM), 'lan', 70_001), 'tunnel');
  // Proxy switched off: the request crosses.
  const off = policy({ proxyArp: false });
  learnRemoteVm(off, 0);
  expect(off.decide(arpRequest(HOST, HOST_IP, VM_IP), 'lan', 1), 'tunnel');
});

test('proxy misses cross rate-limited; over the limit they are counted drops with an alarm', () => {
  const p = policy({ missLimit: { pps: 2, bps: 0 } });
  const unknown = (i: number): Buffer => arpRequest(HOST, HOST_IP, parseIpv4(`192.0.2.${100 + i}`));
  expect(p.decide(unknown(0), 'lan', 0), 'tunnel');
  expect(p.decide(unknown(1), 'lan', 0), 'tunnel');
  expect(p.decide(unknown(2), 'lan', 0), 'drop', 'proxy-miss-rate');
  assert.equal(p.counters.fromLan.drops['proxy-miss-rate'], 1);
  assert.ok(p.alarms.isActive('proxy-miss-rate', ''));
  expect(p.decide(unknown(3), 'lan', 500), 'tunnel', null);
  // Requests for addresses the LAN holds are not misses and do not use the miss budget.
  p.decide(arpReply(HOST2, HOST2_IP, HOST, HOST_IP), 'lan', 500);
  for (let i = 0; i < 10; i++) expect(p.decide(arpRequest(HOST, HOST_IP, HOST2_IP), 'lan', 500), 'tunnel');
  p.tick(500 + 10_000);
  assert.equal(p.alarms.isActive('proxy-miss-rate', ''), false, 'the alarm clears once misses are calm');
});

// --- never suppress announcements --------------------------------------------------------------------------

test('gratuitous ARP and ARP probes are never answered and always cross, even past the miss and BUM limits', () => {
  const one = { broadcast: { pps: 1, bps: 0 }, unknownUnicast: { pps: 1, bps: 0 }, multicast: { pps: 1, bps: 0 } };
  const p = policy({ missLimit: { pps: 1, bps: 0 }, bumFromLan: one, bumFromTunnel: one });
  learnRemoteVm(p, 0);
  // Use up the miss and broadcast budgets.
  p.decide(arpRequest(HOST, HOST_IP, parseIpv4('192.0.2.200')), 'lan', 1);
  expect(p.decide(arpRequest(HOST, HOST_IP, parseIpv4('192.0.2.201')), 'lan', 1), 'drop', 'proxy-miss-rate');
  // A probe for the remote-bound IP (RFC 5227 conflict detection): not answered by the proxy, crosses.
  expect(p.decide(arpProbe(HOST2, VM_IP), 'lan', 1), 'tunnel');
  // A GARP from the LAN (e.g. a failback announcement) for the remote-bound IP: crosses, never answered.
  expect(p.decide(encodeGratuitousArp(HOST2, VM_IP), 'lan', 1), 'tunnel');
  // GARP reply form too.
  expect(p.decide(encodeGratuitousArp(HOST2, HOST2_IP, ARP_OP_REPLY), 'lan', 1), 'tunnel');
  assert.equal(p.counters.events['arp-proxied'], 0);
  // From the tunnel too: a DC host's GARP reaches the LAN past an exhausted broadcast bucket.
  expect(p.decide(data(VM, BROADCAST_MAC_KEY), 'tunnel', 2), 'lan');
  expect(p.decide(data(VM, BROADCAST_MAC_KEY), 'tunnel', 2), 'drop', 'bum-broadcast-rate');
  expect(p.decide(encodeGratuitousArp(VM2, parseIpv4('192.0.2.6')), 'tunnel', 2), 'lan');
  expect(p.decide(arpProbe(VM2, HOST_IP), 'tunnel', 2), 'lan');
});

test('announcements have their own bucket: a GARP flood is still bounded', () => {
  const p = policy({ announceLimit: { pps: 3, bps: 0 } });
  for (let i = 0; i < 3; i++) expect(p.decide(encodeGratuitousArp(HOST, HOST_IP), 'lan', 0), 'tunnel');
  expect(p.decide(encodeGratuitousArp(HOST, HOST_IP), 'lan', 0), 'drop', 'announce-rate');
  expect(p.decide(encodeGratuitousArp(VM, VM_IP), 'tunnel', 0), 'lan', null); // per direction
});

test('unsolicited NA and DAD NS are never answered and always cross, even past the miss limit', () => {
  const p = policy({ missLimit: { pps: 1, bps: 0 } });
  // The VM's binding is remote and fresh.
  expect(
    p.decide(encodeNa({ srcMac: VM, srcIp: VM6, targetIp: VM6, router: false, solicited: false, override: true }), 'tunnel', 0),
    'lan',
  );
  assert.equal(p.neighbours.lookup(ipv6Key(VM6), 0)?.current, 'tunnel');
  p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: parseIpv6('fd00::99') }), 'lan', 1);
  // DAD for the VM's address from a LAN host: not proxied (the real owner must defend it), crosses.
  const dad = encodeNs({ srcMac: HOST2, srcIp: IPV6_UNSPECIFIED, targetIp: VM6 });
  expect(p.decide(dad, 'lan', 1), 'tunnel');
  // An unsolicited NA from the LAN crosses.
  expect(
    p.decide(encodeNa({ srcMac: HOST, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'lan', 1),
    'tunnel',
  );
  assert.equal(p.counters.events['nd-proxied'], 0);
});

// --- ND proxy ----------------------------------------------------------------------------------------------

test('ND proxy answers a multicast NS for a fresh remote target with a solicited NA', () => {
  const p = policy();
  expect(
    p.decide(
      encodeNa({ srcMac: VM, srcIp: VM6, targetIp: VM6, dstIp: HOST6, ethDst: HOST, router: true, solicited: true, override: true }),
      'tunnel',
      0,
    ),
    'lan',
  );
  const d = p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: VM6 }), 'lan', 10);
  expect(d, 'reply');
  const f = d.replies[0] ?? Buffer.alloc(0);
  const eth = newEthernetView();
  assert.equal(parseEthernet(f, eth), null);
  assert.deepEqual([eth.dst, eth.src], [HOST, VM]);
  const nd = newNdView();
  assert.equal(parseNd(f, eth.l3Offset, nd), null, 'valid checksum and hop limit');
  assert.equal(nd.kind, 'na-solicited');
  assert.deepEqual([nd.router, nd.solicited, nd.override, nd.linkAddr], [true, true, true, VM]);
  assert.equal(ipv6ToString(nd.targetIp), 'fd00::5');
  assert.equal(ipv6ToString(nd.dstIp), 'fd00::20');
  // A unicast NS (neighbour unreachability detection) goes to the real host.
  expect(p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: VM6, dstIp: VM6, ethDst: VM }), 'lan', 20), 'tunnel');
  // A local target is never answered.
  p.decide(
    encodeNa({
      srcMac: HOST2,
      srcIp: parseIpv6('fd00::21'),
      targetIp: parseIpv6('fd00::21'),
      router: false,
      solicited: false,
      override: true,
    }),
    'lan',
    30,
  );
  assert.notEqual(p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: parseIpv6('fd00::21') }), 'lan', 31).action, 'reply');
});

test('bindings are learned from ARP, GARP, NS and NA on both sides', () => {
  const p = policy();
  p.decide(arpRequest(HOST, HOST_IP, VM_IP), 'lan', 0);
  p.decide(encodeGratuitousArp(VM, VM_IP), 'tunnel', 0);
  p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: VM6 }), 'lan', 0);
  p.decide(encodeNa({ srcMac: VM, srcIp: VM6, targetIp: VM6, router: false, solicited: false, override: true }), 'tunnel', 0);
  const n = p.neighbours;
  assert.deepEqual([n.lookup(HOST_IP, 1)?.current, n.lookup(HOST_IP, 1)?.lan?.source], ['lan', 'arp']);
  assert.deepEqual([n.lookup(VM_IP, 1)?.current, n.lookup(VM_IP, 1)?.tunnel?.source], ['tunnel', 'garp']);
  assert.equal(n.lookup(ipv6Key(HOST6), 1)?.lan?.mac, HOST);
  assert.equal(n.lookup(ipv6Key(VM6), 1)?.tunnel?.mac, VM);
});

// --- STP / reserved addresses ------------------------------------------------------------------------------

test('802.1D reserved group addresses never cross; a BPDU from the tunnel blocks it and alarms', () => {
  const p = policy({ bpduBlockMs: 60_000 });
  const reserved = (dst: number): Buffer => encodeEthernet({ dst, src: HOST, etherType: 0x0026, payload: Buffer.alloc(38) });
  expect(p.decide(reserved(BPDU_MAC_KEY), 'lan', 0), 'drop', 'reserved-group');
  expect(p.decide(reserved(0x01_80_c2_00_00_0e), 'lan', 0), 'drop', 'reserved-group'); // LLDP
  expect(p.decide(reserved(0x01_80_c2_00_00_02), 'tunnel', 0), 'drop', 'reserved-group'); // LACP
  assert.equal(p.tunnelBlocked, false, 'only a BPDU from the tunnel blocks');
  expect(p.decide(reserved(BPDU_MAC_KEY), 'tunnel', 1000), 'drop', 'bpdu-from-tunnel');
  assert.equal(p.tunnelBlocked, true);
  assert.ok(p.alarms.isActive('bpdu-from-tunnel', ''));
  expect(p.decide(data(HOST, VM), 'lan', 2000), 'drop', 'tunnel-blocked');
  expect(p.decide(data(VM, HOST), 'tunnel', 2000), 'drop', 'tunnel-blocked');
  // The block lasts bpduBlockMs after the last BPDU, then lifts and the alarm clears.
  p.tick(61_000);
  assert.equal(p.tunnelBlocked, false);
  assert.equal(p.alarms.isActive('bpdu-from-tunnel', ''), false);
  expect(p.decide(data(HOST, VM), 'lan', 61_000), 'tunnel');
});

test('with bpduBlockMs 0 the block holds until the operator lifts it', () => {
  const p = policy({ bpduBlockMs: 0 });
  p.decide(encodeEthernet({ dst: BPDU_MAC_KEY, src: VM, etherType: 0x0026, payload: Buffer.alloc(38) }), 'tunnel', 0);
  p.tick(10 ** 9);
  expect(p.decide(data(HOST, VM), 'lan', 10 ** 9), 'drop', 'tunnel-blocked');
  p.unblockTunnel(10 ** 9);
  expect(p.decide(data(HOST, VM), 'lan', 10 ** 9), 'tunnel');
});

// --- DHCP guard -------------------------------------------------------------------------------------------

test('DHCP server messages from the tunnel are dropped unless allowed; LAN DHCP crosses', () => {
  const p = policy();
  const offer = udp(VM, BROADCAST_MAC_KEY, VM_IP, 0xffffffff, 67, 68);
  expect(p.decide(offer, 'tunnel', 0), 'drop', 'dhcp-server-from-tunnel');
  // Client messages from the DC (a recovered VM asking the on-prem server) pass.
  expect(p.decide(udp(VM, BROADCAST_MAC_KEY, 0, 0xffffffff, 68, 67), 'tunnel', 0), 'lan');
  // The on-prem server answering a DC client: crosses.
  expect(p.decide(udp(HOST, BROADCAST_MAC_KEY, HOST_IP, 0xffffffff, 67, 68), 'lan', 0), 'tunnel');
  const allowed = policy({ allowDhcpFromTunnel: true });
  expect(allowed.decide(offer, 'tunnel', 0), 'lan');
  // DHCPv6 advertise/reply (547 -> 546) likewise.
  const ip6 = Buffer.alloc(48);
  ip6[0] = 0x60;
  ip6.writeUInt16BE(8, 4);
  ip6[6] = 17;
  ip6[7] = 64;
  VM6.copy(ip6, 8);
  parseIpv6('fe80::1').copy(ip6, 24);
  ip6.writeUInt16BE(547, 40);
  ip6.writeUInt16BE(546, 42);
  const v6 = encodeEthernet({ dst: HOST, src: VM, etherType: ETHERTYPE_IPV6, payload: ip6 });
  expect(p.decide(v6, 'tunnel', 0), 'drop', 'dhcp-server-from-tunnel');
  expect(allowed.decide(v6, 'tunnel', 0), 'lan');
});

// --- BUM buckets ------------------------------------------------------------------------------------------

test('per-class BUM buckets in each direction, in pps', () => {
  const lim = { pps: 3, bps: 0 };
  const p = policy({ bumFromLan: { broadcast: lim, unknownUnicast: lim, multicast: lim } });
  const mc = 0x01_00_5e_00_00_fb; // mDNS
  for (let i = 0; i < 3; i++) expect(p.decide(data(HOST, BROADCAST_MAC_KEY), 'lan', 0), 'tunnel');
  expect(p.decide(data(HOST, BROADCAST_MAC_KEY), 'lan', 0), 'drop', 'bum-broadcast-rate');
  for (let i = 0; i < 3; i++) expect(p.decide(data(HOST, mc), 'lan', 0), 'tunnel');
  expect(p.decide(data(HOST, mc), 'lan', 0), 'drop', 'bum-multicast-rate');
  for (let i = 0; i < 3; i++) expect(p.decide(data(HOST, 0x02_00_00_00_07_00 + i), 'lan', 0), 'tunnel');
  expect(p.decide(data(HOST, 0x02_00_00_00_07_09), 'lan', 0), 'drop', 'bum-unknown-unicast-rate');
  // Known unicast is never limited, and the other direction has its own buckets.
  p.decide(data(VM, HOST), 'tunnel', 0);
  for (let i = 0; i < 20; i++) expect(p.decide(data(HOST, VM), 'lan', 0), 'tunnel');
  expect(p.decide(data(VM, BROADCAST_MAC_KEY), 'tunnel', 0), 'lan');
  assert.ok(p.alarms.isActive('bum-rate-exceeded', 'from-lan broadcast'));
  // A second later the buckets have refilled.
  expect(p.decide(data(HOST, BROADCAST_MAC_KEY), 'lan', 1000), 'tunnel');
  p.tick(20_000);
  assert.equal(p.alarms.isActive('bum-rate-exceeded', 'from-lan broadcast'), false);
});

test('per-class BUM buckets in bps, from the tunnel', () => {
  // 8 kbit/s = 1000 bytes/s; the burst is never below one full frame (1522 bytes). Frames of 1000 bytes:
  // one fits, the next needs 478 ms more of tokens.
  const lim = { pps: 0, bps: 8000 };
  const p = policy({ bumFromTunnel: { broadcast: lim, unknownUnicast: lim, multicast: lim } });
  const big = data(VM, BROADCAST_MAC_KEY, 958);
  assert.equal(big.length, 1000);
  expect(p.decide(big, 'tunnel', 0), 'lan');
  expect(p.decide(big, 'tunnel', 0), 'drop', 'bum-broadcast-rate');
  expect(p.decide(big, 'tunnel', 400), 'drop', 'bum-broadcast-rate');
  expect(p.decide(big, 'tunnel', 500), 'lan', null);
});

// --- split brain ------------------------------------------------------------------------------------------

test('split brain: alarm, and DC claims for that IP stop reaching the LAN; probes still pass', () => {
  const p = policy();
  // Production server on the LAN.
  expect(p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 0), 'tunnel');
  // A drill VM in the DC boots with the same IP and announces it: contested, never reaches the LAN.
  expect(p.decide(encodeGratuitousArp(VM, HOST_IP), 'tunnel', 1000), 'drop', 'split-brain-claim');
  // The server keeps talking: split brain.
  p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 2000);
  assert.ok(p.alarms.isActive('split-brain', '192.0.2.20'));
  expect(p.decide(arpReply(VM, HOST_IP, HOST2, HOST2_IP), 'tunnel', 3000), 'drop', 'split-brain-claim');
  expect(p.decide(arpRequest(VM, HOST_IP, HOST2_IP), 'tunnel', 3000), 'drop', 'split-brain-claim');
  expect(
    p.decide(encodeNa({ srcMac: VM, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'tunnel', 3000),
    'lan',
  );
  // Probes claim nothing and still cross (duplicate detection needs them).
  expect(p.decide(arpProbe(VM2, HOST_IP), 'tunnel', 3000), 'lan');
  // The LAN side is never blocked.
  expect(p.decide(encodeGratuitousArp(HOST, HOST_IP), 'lan', 3000), 'tunnel');
  assert.equal(p.reoriginator.pendingCount, 0, 'no announcement is re-originated for either side');
});

test('split brain for IPv6: DC NAs for the address are blocked', () => {
  const p = policy();
  p.decide(encodeNa({ srcMac: HOST, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'lan', 0);
  const vmNa = encodeNa({ srcMac: VM, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true });
  expect(p.decide(vmNa, 'tunnel', 1000), 'drop', 'split-brain-claim');
  p.decide(encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: parseIpv6('fd00::1') }), 'lan', 2000);
  expect(p.decide(vmNa, 'tunnel', 3000), 'drop', 'split-brain-claim');
  assert.ok(p.alarms.isActive('split-brain', 'fd00::20'));
});

test('split brain for IPv6: a DC NS carrying the contested address as source is blocked too', () => {
  const p = policy();
  p.decide(encodeNa({ srcMac: HOST, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'lan', 0);
  expect(p.decide(encodeNs({ srcMac: VM, srcIp: HOST6, targetIp: parseIpv6('fd00::1') }), 'tunnel', 1000), 'drop', 'split-brain-claim');
});

test('unsolicited NA crosses past exhausted multicast buckets in both directions', () => {
  const one = { broadcast: { pps: 1, bps: 0 }, unknownUnicast: { pps: 1, bps: 0 }, multicast: { pps: 1, bps: 0 } };
  const p = policy({ bumFromLan: one, bumFromTunnel: one });
  const mcast = (src: number): Buffer =>
    encodeEthernet({
      dst: 0x01_00_5e_00_00_fb,
      src,
      etherType: ETHERTYPE_IPV4,
      payload: encodeIpv4Udp({ src: HOST_IP, dst: parseIpv4('224.0.0.251'), srcPort: 5353, dstPort: 5353, payload: Buffer.alloc(20) }),
    });
  p.decide(mcast(HOST), 'lan', 0);
  expect(p.decide(mcast(HOST), 'lan', 0), 'drop', 'bum-multicast-rate');
  p.decide(mcast(VM), 'tunnel', 0);
  expect(p.decide(mcast(VM), 'tunnel', 0), 'drop', 'bum-multicast-rate');
  expect(
    p.decide(encodeNa({ srcMac: HOST, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'lan', 0),
    'tunnel',
  );
  expect(
    p.decide(encodeNa({ srcMac: VM, srcIp: VM6, targetIp: VM6, router: false, solicited: false, override: true }), 'tunnel', 0),
    'lan',
  );
});

test('with splitBrainBlock off, the alarm is still raised but DC claims reach the LAN', () => {
  const p = policy({ splitBrainBlock: false });
  p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 0);
  expect(p.decide(encodeGratuitousArp(VM, HOST_IP), 'tunnel', 1000), 'lan');
  p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 2000);
  assert.ok(p.alarms.isActive('split-brain', '192.0.2.20'));
  expect(p.decide(arpReply(VM, HOST_IP, HOST2, HOST2_IP), 'tunnel', 3000), 'lan');
});

// --- re-origination ---------------------------------------------------------------------------------------

test('DR failover: the VM claims a quiet address -> the LAN holder is probed; no answer -> a move, GARPs to the LAN', () => {
  const p = policy({ splitBrainWindowMs: 60_000, holderVerifyMs: 3000 });
  p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 0); // server alive at t=0, then dies
  // The VM's GARP is held back while the server is probed (a unicast ARP probe from the VM's MAC).
  expect(p.decide(encodeGratuitousArp(VM, HOST_IP), 'tunnel', 120_000), 'drop', 'split-brain-claim');
  assert.equal(p.counters.events['neighbour-verify-probe'], 1);
  const probe = p.reoriginator.due(120_000);
  assert.equal(probe.length, 1);
  assert.equal(probe[0]?.toward, 'lan');
  const a = newArpView();
  const eth = newEthernetView();
  const pf = probe[0]?.frame ?? Buffer.alloc(0);
  parseEthernet(pf, eth);
  parseArp(pf, eth.l3Offset, a);
  assert.deepEqual([eth.dst, eth.src, a.kind, a.senderMac, a.targetIp], [HOST, VM, 'probe', VM, HOST_IP]);
  assert.equal(p.reoriginator.due(121_000).length, 1, 'a second copy');
  // No answer: 3 s later the VM's next claim takes the address, and it is announced to the LAN.
  expect(p.decide(arpRequest(VM, HOST_IP, HOST2_IP), 'tunnel', 123_000), 'lan');
  assert.equal(p.counters.events['neighbour-moved'], 1);
  const due = p.reoriginator.due(123_000);
  assert.equal(due.length, 1);
  assert.equal(due[0]?.toward, 'lan');
  const f = due[0]?.frame ?? Buffer.alloc(0);
  parseEthernet(f, eth);
  parseArp(f, eth.l3Offset, a);
  assert.deepEqual([a.kind, a.senderMac, a.senderIp], ['gratuitous', VM, HOST_IP]);
  assert.equal(p.reoriginator.due(124_000).length, 1);
  assert.equal(p.reoriginator.due(125_000).length, 1);
  assert.equal(p.reoriginator.due(126_000).length, 0);
  // Failback: the server announces itself after the VM is gone -> re-originated toward the tunnel.
  expect(p.decide(encodeGratuitousArp(HOST, HOST_IP), 'lan', 400_000), 'tunnel');
  assert.equal(p.reoriginator.due(400_000)[0]?.toward, 'tunnel');
});

test('drill: a production server that answers the verification probe keeps its address', () => {
  const p = policy({ splitBrainWindowMs: 60_000 });
  p.decide(arpRequest(HOST, HOST_IP, OWN_IP + 1), 'lan', 0); // last broadcast seen from the server
  expect(p.decide(encodeGratuitousArp(VM, HOST_IP), 'tunnel', 300_000), 'drop', 'split-brain-claim');
  // The server answers the probe (Linux replies to a sender-0 probe toward the probe's sender MAC).
  const answer = encodeArp({ op: ARP_OP_REPLY, senderMac: HOST, senderIp: HOST_IP, targetMac: VM, targetIp: 0 });
  expect(p.decide(answer, 'lan', 300_200), 'tunnel');
  assert.ok(p.alarms.isActive('split-brain', '192.0.2.20'));
  expect(p.decide(encodeGratuitousArp(VM, HOST_IP), 'tunnel', 304_000), 'drop', 'split-brain-claim');
  expect(p.decide(arpReply(VM, HOST_IP, HOST2, HOST2_IP), 'tunnel', 310_000), 'drop', 'split-brain-claim');
  assert.equal(p.neighbours.lookup(HOST_IP, 310_000)?.current, 'lan');
  assert.equal(p.counters.events['neighbour-moved'], 0);
});

test('IPv6: the verification probe is a DAD NS sent to the LAN holder', () => {
  const p = policy();
  p.decide(encodeNa({ srcMac: HOST, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true }), 'lan', 0);
  const vmNa = encodeNa({ srcMac: VM, srcIp: HOST6, targetIp: HOST6, router: false, solicited: false, override: true });
  expect(p.decide(vmNa, 'tunnel', 200_000), 'drop', 'split-brain-claim');
  const f = p.reoriginator.due(200_000)[0]?.frame ?? Buffer.alloc(0);
  const eth = newEthernetView();
  parseEthernet(f, eth);
  const nd = newNdView();
  assert.equal(parseNd(f, eth.l3Offset, nd), null);
  assert.deepEqual([eth.dst, eth.src, nd.kind, ipv6ToString(nd.targetIp)], [HOST, VM, 'dad-ns', 'fd00::20']);
});

// --- own traffic ------------------------------------------------------------------------------------------

test("frames to or from the Connector's own MAC or IP are never tunnelled", () => {
  const p = policy({ ownIpv6: [parseIpv6('fd00::2')] });
  // Its own management traffic and tunnel TCP leaving through the LAN (one-port installation).
  expect(p.decide(udp(OWN, 0x02_00_00_00_00_01, OWN_IP, parseIpv4('198.51.100.1'), 40000, 443), 'lan', 0), 'drop', 'own-traffic');
  expect(p.decide(data(HOST, OWN), 'lan', 0), 'drop', 'own-traffic');
  expect(p.decide(arpRequest(OWN, OWN_IP, HOST_IP), 'lan', 0), 'drop', 'own-traffic');
  // Someone asking for the Connector's address: the Connector answers on the LAN; the DC never sees it.
  expect(p.decide(arpRequest(HOST, HOST_IP, OWN_IP), 'lan', 0), 'drop', 'own-traffic');
  // IP traffic to its address behind another MAC (a router hop on the LAN) does not cross either.
  expect(p.decide(udp(HOST, BROADCAST_MAC_KEY, HOST_IP, OWN_IP, 1, 2), 'lan', 0), 'drop', 'own-traffic');
  // From the tunnel: its own frames coming back, DC hosts reaching it, or DC claims on its address.
  expect(p.decide(data(OWN, HOST), 'tunnel', 0), 'drop', 'own-traffic');
  expect(p.decide(udp(VM, HOST, VM_IP, OWN_IP, 1, 2), 'tunnel', 0), 'drop', 'own-traffic');
  expect(p.decide(encodeGratuitousArp(VM, OWN_IP), 'tunnel', 0), 'drop', 'own-traffic');
  assert.ok(p.alarms.isActive('own-address-conflict', '192.0.2.2'));
  const na = encodeNa({
    srcMac: VM,
    srcIp: parseIpv6('fd00::2'),
    targetIp: parseIpv6('fd00::2'),
    router: false,
    solicited: false,
    override: true,
  });
  expect(p.decide(na, 'tunnel', 0), 'drop', 'own-traffic');
  assert.ok(p.alarms.isActive('own-address-conflict', 'fd00::2'));
  assert.equal(p.counters.fromLan.forwarded, 0);
});

// --- VLAN tags --------------------------------------------------------------------------------------------

test('VLAN-tagged frames are discarded by default (RFC 7348 6.1) and cross unchanged in transparent mode', () => {
  const tagged = encodeArp({ op: ARP_OP_REQUEST, senderMac: HOST, senderIp: HOST_IP, targetMac: 0, targetIp: VM_IP, vlans: [{ tci: 10 }] });
  const p = policy();
  learnRemoteVm(p, 0);
  expect(p.decide(tagged, 'lan', 1), 'drop', 'vlan-tagged');
  expect(p.decide(tagged, 'tunnel', 1), 'drop', 'vlan-tagged');
  const t = policy({ vlanMode: 'transparent' });
  learnRemoteVm(t, 0);
  // Not proxied (another broadcast domain) and not learned.
  expect(t.decide(tagged, 'lan', 1), 'tunnel');
  assert.equal(t.neighbours.lookup(HOST_IP, 1), undefined);
  // Guards still apply inside tags.
  const bpdu = encodeEthernet({ dst: BPDU_MAC_KEY, src: VM, etherType: 0x0026, payload: Buffer.alloc(38), vlans: [{ tci: 10 }] });
  expect(t.decide(bpdu, 'tunnel', 2), 'drop', 'bpdu-from-tunnel');
});

// --- malformed frames -------------------------------------------------------------------------------------

test('malformed frames are counted drops with the codec reason', () => {
  const p = policy();
  const cases: [Buffer, FrameSide, string][] = [
    [Buffer.alloc(10), 'lan', 'eth-short'],
    [Buffer.alloc(1600), 'tunnel', 'eth-oversize'],
    [
      encodeEthernet({ dst: BROADCAST_MAC_KEY, src: HOST, etherType: 0x0806, payload: Buffer.alloc(10) }).subarray(0, 30),
      'lan',
      'arp-short',
    ],
    [encodeEthernet({ dst: HOST, src: VM, etherType: ETHERTYPE_IPV4, payload: Buffer.alloc(46, 0x55) }), 'tunnel', 'ipv4-bad-version'],
    [
      encodeEthernet({ dst: HOST, src: VM, etherType: ETHERTYPE_IPV6, payload: Buffer.alloc(20, 0x60) }).subarray(0, 40),
      'tunnel',
      'ipv6-short',
    ],
  ];
  const ns = encodeNs({ srcMac: HOST, srcIp: HOST6, targetIp: VM6 });
  ns[ns.length - 1] = (ns[ns.length - 1] ?? 0) ^ 0xff;
  cases.push([ns, 'lan', 'nd-bad-checksum']);
  for (const [frame, dir, reason] of cases) expect(p.decide(frame, dir, 0), 'drop', reason);
  assert.equal(totalDrops(p.counters.fromLan) + totalDrops(p.counters.fromTunnel), cases.length);
});

test('non-IPv4 ARP (RARP-style hardware types) crosses as opaque broadcast, never proxied', () => {
  const p = policy();
  const f = encodeArp({ op: ARP_OP_REQUEST, senderMac: HOST, senderIp: HOST_IP, targetMac: 0, targetIp: VM_IP });
  f.writeUInt16BE(6, 14); // hardware type IEEE 802
  expect(p.decide(f, 'lan', 0), 'tunnel');
  assert.equal(p.counters.events['arp-unsupported-forwarded'], 1);
});

// --- counters and status ----------------------------------------------------------------------------------

test('snapshot: frozen counters with every drop reason, alarms and table sizes', () => {
  const p = policy();
  p.decide(data(HOST, VM), 'lan', 0);
  p.decide(Buffer.alloc(3), 'tunnel', 0);
  const s = p.snapshot(0);
  assert.ok(Object.isFrozen(s) && Object.isFrozen(s.counters.fromLan.drops));
  assert.equal(s.counters.fromLan.frames, 1);
  assert.equal(s.counters.fromLan.forwarded, 1);
  assert.equal(s.counters.fromTunnel.drops['eth-short'], 1);
  assert.deepEqual(Object.keys(s.counters.fromLan.drops).sort(), [...new Set(POLICY_DROPS)].sort());
  assert.equal(s.macEntries, 1);
  p.decide(data(HOST, VM), 'lan', 1);
  assert.equal(s.counters.fromLan.frames, 1, 'a snapshot does not move');
  const m = countersToMetrics(s.counters);
  assert.ok(
    m.some(
      (x) =>
        x.name === 'connector_l2_drops_total' &&
        x.labels['direction'] === 'from_tunnel' &&
        x.labels['reason'] === 'eth-short' &&
        x.value === 1,
    ),
  );
});

test('an 802.1p priority tag (VID 0) is treated as untagged: learned, proxied, forwarded', () => {
  const p = policy();
  learnRemoteVm(p, 0);
  const prio = encodeArp({
    op: ARP_OP_REQUEST,
    senderMac: HOST,
    senderIp: HOST_IP,
    targetMac: 0,
    targetIp: VM_IP,
    vlans: [{ tci: 0x6000 }],
  });
  expect(p.decide(prio, 'lan', 1), 'reply');
  assert.equal(p.neighbours.lookup(HOST_IP, 1)?.lan?.mac, HOST);
  expect(
    p.decide(
      encodeArp({ op: ARP_OP_REQUEST, senderMac: HOST, senderIp: HOST_IP, targetMac: 0, targetIp: VM_IP, vlans: [{ tci: 0x6005 }] }),
      'lan',
      1,
    ),
    'drop',
    'vlan-tagged',
  );
});

test('junk bindings (multicast MAC, broadcast or multicast sender IP) are not learned, so never proxied', () => {
  const p = policy();
  p.decide(arpReply(0x01_00_5e_00_00_01, VM_IP, HOST, HOST_IP), 'tunnel', 0);
  p.decide(arpReply(VM, 0xffffffff, HOST, HOST_IP), 'tunnel', 0);
  p.decide(arpReply(VM, parseIpv4('224.0.0.5'), HOST, HOST_IP), 'tunnel', 0);
  assert.equal(p.neighbours.size, 0);
  assert.notEqual(p.decide(arpRequest(HOST, HOST_IP, VM_IP), 'lan', 1).action, 'reply');
});

test('address-conflict alarms clear once the conflicting claims stop', () => {
  const p = policy();
  p.decide(encodeGratuitousArp(VM, OWN_IP), 'tunnel', 0);
  assert.ok(p.alarms.isActive('own-address-conflict', '192.0.2.2'));
  p.tick(299_999);
  assert.ok(p.alarms.isActive('own-address-conflict', '192.0.2.2'));
  p.tick(300_000);
  assert.equal(p.alarms.isActive('own-address-conflict', '192.0.2.2'), false);
  assert.equal(p.snapshot(300_000).alarms.cleared[0]?.code, 'own-address-conflict');
});

function dhcp(type: number, server: number, serverIp: number, client: number, yiaddr: number): Buffer {
  const b = Buffer.alloc(248);
  b[0] = 2; // BOOTREPLY
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(yiaddr, 16);
  b.writeUIntBE(client, 28, 6);
  b.writeUInt32BE(0x63825363, 236);
  b.set([53, 1, type, 255], 240);
  return encodeEthernet({
    dst: client,
    src: server,
    etherType: ETHERTYPE_IPV4,
    payload: encodeIpv4Udp({ src: serverIp, dst: yiaddr, srcPort: 67, dstPort: 68, payload: b }),
  });
}

test('DHCP ACKs teach bindings on the client side; offers and blocked rogue ACKs teach nothing', () => {
  const p = policy();
  p.decide(data(VM, BROADCAST_MAC_KEY), 'tunnel', 0); // the recovered VM, asking for a lease
  expect(p.decide(dhcp(2, HOST, HOST_IP, VM, VM_IP), 'lan', 1), 'tunnel'); // OFFER
  assert.equal(p.neighbours.lookup(VM_IP, 1), undefined);
  expect(p.decide(dhcp(5, HOST, HOST_IP, VM, VM_IP), 'lan', 2), 'tunnel'); // ACK
  assert.deepEqual([p.neighbours.lookup(VM_IP, 2)?.current, p.neighbours.lookup(VM_IP, 2)?.tunnel?.source], ['tunnel', 'dhcp']);
  expect(p.decide(arpRequest(HOST2, HOST2_IP, VM_IP), 'lan', 3), 'reply');
  // A rogue DC server's ACK for a LAN client is dropped by the DHCP guard and teaches nothing.
  p.decide(data(HOST2, BROADCAST_MAC_KEY), 'lan', 4);
  expect(p.decide(dhcp(5, VM2, VM_IP, HOST2, parseIpv4('192.0.2.77')), 'tunnel', 5), 'drop', 'dhcp-server-from-tunnel');
  assert.equal(p.neighbours.lookup(parseIpv4('192.0.2.77'), 5), undefined);
  const off = policy({ learnFromDhcp: false });
  off.decide(data(VM, BROADCAST_MAC_KEY), 'tunnel', 0);
  off.decide(dhcp(5, HOST, HOST_IP, VM, VM_IP), 'lan', 1);
  assert.equal(off.neighbours.lookup(VM_IP, 1), undefined);
});

test('own addresses can change at run time without losing tables or a BPDU block', () => {
  const p = policy({ bpduBlockMs: 0 });
  p.decide(data(VM, HOST), 'tunnel', 0);
  p.decide(encodeEthernet({ dst: BPDU_MAC_KEY, src: VM, etherType: 0x0026, payload: Buffer.alloc(38) }), 'tunnel', 1);
  const NEW_OWN = 0x02_00_00_00_00_98;
  p.setOwnAddresses({ macs: [NEW_OWN], ipv4: [parseIpv4('192.0.2.3')], ipv6: [] });
  assert.deepEqual(p.config.ownMacs, [NEW_OWN]);
  assert.equal(p.tunnelBlocked, true);
  assert.equal(p.macs.lookup(VM, 2)?.side, 'tunnel');
  p.unblockTunnel(2);
  expect(p.decide(data(NEW_OWN, VM), 'lan', 3), 'drop', 'own-traffic');
  expect(p.decide(data(OWN, VM), 'lan', 3), 'tunnel');
});
