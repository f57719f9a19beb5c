// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ARP_DROPS,
  ARP_KINDS,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  encodeArp,
  encodeGratuitousArp,
  newArpView,
  parseArp,
  type ArpKind,
  type ArpSpec,
} from '../../../../../src/agent/core/l2/arp.js';
import { ETHERTYPE_ARP, newEthernetView, parseEthernet } from '../../../../../src/shared/l2/ethernet.js';
import { parseIpv4 } from '../../../../../src/agent/core/l2/ipv4.js';
import { BROADCAST_MAC_KEY } from '../../../../../src/shared/l2/mac.js';

const MAC_A = 0x02005e100001;
const MAC_B = 0x02005e100002;
const IP_A = parseIpv4('192.0.2.1');
const IP_B = parseIpv4('192.0.2.2');

function decode(frame: Buffer): { eth: ReturnType<typeof newEthernetView>; arp: ReturnType<typeof newArpView> } {
  const eth = newEthernetView();
  const arp = newArpView();
  assert.equal(parseEthernet(frame, eth), null);
  assert.equal(eth.etherType, ETHERTYPE_ARP);
  assert.equal(parseArp(frame, eth.l3Offset, arp), null);
  return { eth, arp };
}

const cases: Array<{ name: string; spec: ArpSpec; kind: ArpKind; ethDst: number }> = [
  {
    name: 'request',
    spec: { op: 1, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_B },
    kind: 'request',
    ethDst: BROADCAST_MAC_KEY,
  },
  { name: 'reply', spec: { op: 2, senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_A, targetIp: IP_A }, kind: 'reply', ethDst: MAC_A },
  {
    name: 'gratuitous request (RFC 5227 announcement)',
    spec: { op: 1, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_A },
    kind: 'gratuitous',
    ethDst: BROADCAST_MAC_KEY,
  },
  {
    name: 'gratuitous reply',
    spec: { op: 2, senderMac: MAC_A, senderIp: IP_A, targetMac: MAC_A, targetIp: IP_A, ethDst: BROADCAST_MAC_KEY },
    kind: 'gratuitous',
    ethDst: BROADCAST_MAC_KEY,
  },
  {
    name: 'probe (sender 0.0.0.0)',
    spec: { op: 1, senderMac: MAC_A, senderIp: 0, targetMac: 0, targetIp: IP_B },
    kind: 'probe',
    ethDst: BROADCAST_MAC_KEY,
  },
];

for (const c of cases) {
  test(`ARP ${c.name}: decode(encode(x)) == x and the kind is ${c.kind}`, () => {
    const f = encodeArp(c.spec);
    assert.equal(f.length, 60);
    const { eth, arp } = decode(f);
    assert.equal(eth.dst, c.ethDst);
    assert.equal(eth.src, c.spec.senderMac);
    assert.deepEqual(arp, {
      op: c.spec.op,
      senderMac: c.spec.senderMac,
      senderIp: c.spec.senderIp,
      targetMac: c.spec.targetMac,
      targetIp: c.spec.targetIp,
      kind: c.kind,
    });
  });
}

test('a probe for 0.0.0.0 is still a probe, and a reply from 0.0.0.0 is not gratuitous', () => {
  assert.equal(decode(encodeArp({ op: 1, senderMac: MAC_A, senderIp: 0, targetMac: 0, targetIp: 0 })).arp.kind, 'probe');
  assert.equal(decode(encodeArp({ op: 2, senderMac: MAC_A, senderIp: 0, targetMac: MAC_B, targetIp: 0 })).arp.kind, 'reply');
});

test('encodeGratuitousArp builds both announcement forms, broadcast', () => {
  const req = decode(encodeGratuitousArp(MAC_A, IP_A));
  assert.equal(req.arp.op, ARP_OP_REQUEST);
  assert.equal(req.arp.kind, 'gratuitous');
  assert.equal(req.arp.targetMac, 0);
  assert.equal(req.eth.dst, BROADCAST_MAC_KEY);
  const rep = decode(encodeGratuitousArp(MAC_A, IP_A, ARP_OP_REPLY));
  assert.equal(rep.arp.op, ARP_OP_REPLY);
  assert.equal(rep.arp.kind, 'gratuitous');
  assert.equal(rep.arp.targetMac, MAC_A);
  assert.equal(rep.eth.dst, BROADCAST_MAC_KEY);
});

test('explicit Ethernet addresses and VLAN tags are honoured', () => {
  const f = encodeArp({
    op: 2,
    senderMac: MAC_B,
    senderIp: IP_B,
    targetMac: MAC_A,
    targetIp: IP_A,
    ethSrc: 0x020000000099,
    vlans: [{ tci: 42 }],
  });
  const { eth, arp } = decode(f);
  assert.equal(eth.src, 0x020000000099);
  assert.equal(eth.vlanTci, 42);
  assert.equal(eth.l3Offset, 18);
  assert.equal(arp.senderMac, MAC_B);
});

test('truncated and non-Ethernet/IPv4 ARP are dropped with a reason', () => {
  const good = encodeArp({ op: 1, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_B });
  const v = newArpView();
  const mod = (off: number, val: number): Buffer => {
    const b = Buffer.from(good);
    b[off] = val;
    return b;
  };
  assert.equal(parseArp(good.subarray(0, 41), 14, v), 'arp-short');
  assert.equal(parseArp(good.subarray(0, 42), 14, v), null); // unpadded, as captured on veth
  assert.equal(parseArp(good, 40, v), 'arp-short');
  assert.equal(parseArp(mod(15, 6), 14, v), 'arp-unsupported'); // IEEE 802 hardware type
  assert.equal(parseArp(mod(16, 0x86), 14, v), 'arp-unsupported'); // protocol type not IPv4
  assert.equal(parseArp(mod(18, 8), 14, v), 'arp-unsupported'); // hlen
  assert.equal(parseArp(mod(19, 16), 14, v), 'arp-unsupported'); // plen
  assert.equal(parseArp(mod(21, 3), 14, v), 'arp-unsupported'); // RARP request
  assert.equal(parseArp(mod(21, 8), 14, v), 'arp-unsupported'); // InARP request
  assert.equal(parseArp(mod(21, 0), 14, v), 'arp-unsupported');
});

test('reasons and kinds are exported as constant lists', () => {
  assert.deepEqual([...ARP_DROPS], ['arp-short', 'arp-unsupported']);
  assert.deepEqual([...ARP_KINDS], ['request', 'reply', 'gratuitous', 'probe']);
});
