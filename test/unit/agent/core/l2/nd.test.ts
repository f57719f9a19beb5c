// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../../src/shared/errors.js';
import { checksumAdd, checksumAddWord, checksumFinish } from '../../../../../src/agent/core/l2/checksum.js';
import { ETHERTYPE_IPV6, newEthernetView, parseEthernet } from '../../../../../src/shared/l2/ethernet.js';
import { macToString } from '../../../../../src/shared/l2/mac.js';
import {
  encodeNa,
  encodeNs,
  IPV6_ALL_NODES,
  ipv6MulticastMacKey,
  ipv6ToString,
  ND_DROPS,
  newNdView,
  parseIpv6,
  parseNd,
  solicitedNodeMulticast,
  type NdView,
} from '../../../../../src/agent/core/l2/nd.js';

const MAC_A = 0x02005e100001;
const MAC_B = 0x02005e100002;
const LL_A = parseIpv6('fe80::5eff:fe10:1');
const IP_A = parseIpv6('2001:db8::a');
const IP_B = parseIpv6('2001:db8::1:b');

function decode(frame: Buffer): { l3: number; nd: NdView; r: ReturnType<typeof parseNd> } {
  const eth = newEthernetView();
  assert.equal(parseEthernet(frame, eth), null);
  assert.equal(eth.etherType, ETHERTYPE_IPV6);
  const nd = newNdView();
  return { l3: eth.l3Offset, nd, r: parseNd(frame, eth.l3Offset, nd) };
}

/** Recomputes the ICMPv6 checksum after a test edits a frame (so only the intended check can fire). */
function fixChecksum(f: Buffer, l3 = 14): Buffer {
  const len = f.readUInt16BE(l3 + 4);
  f.writeUInt16BE(0, l3 + 42);
  let s = checksumAdd(f, l3 + 8, 32);
  s = checksumAddWord(len, s);
  s = checksumAddWord(58, s);
  f.writeUInt16BE(checksumFinish(checksumAdd(f, l3 + 40, len, s)), l3 + 42);
  return f;
}

test('NS: addresses, SLLA, solicited-node destination, kind ns', () => {
  const f = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B });
  const { nd, r } = decode(f);
  assert.equal(r, null);
  assert.equal(nd.type, 135);
  assert.equal(nd.kind, 'ns');
  assert.equal(ipv6ToString(nd.srcIp), '2001:db8::a');
  assert.equal(ipv6ToString(nd.dstIp), 'ff02::1:ff01:b');
  assert.equal(ipv6ToString(nd.targetIp), '2001:db8::1:b');
  assert.equal(nd.linkAddr, MAC_A);
  assert.equal(macToString(f.subarray(0, 6)), '33:33:ff:01:00:0b');
  assert.equal(f.length, 14 + 40 + 32);
});

test('NS to a unicast address (reachability check) needs and uses an explicit ethDst', () => {
  assert.throws(() => encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B, dstIp: IP_B }), RangeError);
  const f = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B, dstIp: IP_B, ethDst: MAC_B });
  const { nd, r } = decode(f);
  assert.equal(r, null);
  assert.equal(nd.kind, 'ns');
  assert.equal(ipv6ToString(nd.dstIp), '2001:db8::1:b');
});

test('DAD NS from :: has no SLLA and is kind dad-ns', () => {
  const f = encodeNs({ srcMac: MAC_A, srcIp: parseIpv6('::'), targetIp: IP_A });
  const { nd, r } = decode(f);
  assert.equal(r, null);
  assert.equal(nd.kind, 'dad-ns');
  assert.equal(nd.linkAddr, -1);
  assert.equal(ipv6ToString(nd.srcIp), '::');
  assert.equal(f.length, 14 + 40 + 24);
});

test('solicited NA: flags, TLLA, unicast destination, kind na-solicited', () => {
  const f = encodeNa({
    srcMac: MAC_B,
    srcIp: IP_B,
    dstIp: IP_A,
    ethDst: MAC_A,
    targetIp: IP_B,
    router: true,
    solicited: true,
    override: false,
  });
  const { nd, r } = decode(f);
  assert.equal(r, null);
  assert.equal(nd.type, 136);
  assert.equal(nd.kind, 'na-solicited');
  assert.deepEqual([nd.router, nd.solicited, nd.override], [true, true, false]);
  assert.equal(nd.linkAddr, MAC_B);
  assert.equal(ipv6ToString(nd.targetIp), '2001:db8::1:b');
});

test('unsolicited NA to all-nodes: kind na-unsolicited, override set', () => {
  const f = encodeNa({ srcMac: MAC_A, srcIp: LL_A, targetIp: IP_A, router: false, solicited: false, override: true });
  const { nd, r } = decode(f);
  assert.equal(r, null);
  assert.equal(nd.kind, 'na-unsolicited');
  assert.deepEqual([nd.router, nd.solicited, nd.override], [false, false, true]);
  assert.deepEqual(nd.dstIp, IPV6_ALL_NODES);
  assert.equal(macToString(f.subarray(0, 6)), '33:33:00:00:00:01');
  assert.equal(nd.linkAddr, MAC_A);
});

test('an NA without TLLA reports linkAddr -1; VLAN tags are carried', () => {
  const f = encodeNa({
    srcMac: MAC_A,
    srcIp: LL_A,
    targetIp: IP_A,
    router: false,
    solicited: false,
    override: false,
    tlla: null,
    vlans: [{ tci: 9 }],
  });
  const { nd, r, l3 } = decode(f);
  assert.equal(l3, 18);
  assert.equal(r, null);
  assert.equal(nd.linkAddr, -1);
});

test('other IPv6 packets are not-nd', () => {
  const ns = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B });
  const nd = newNdView();
  const echo = Buffer.from(ns);
  echo[54] = 128; // ICMPv6 echo request
  assert.equal(parseNd(echo, 14, nd), 'not-nd');
  const udp = Buffer.from(ns);
  udp[20] = 17;
  assert.equal(parseNd(udp, 14, nd), 'not-nd');
  const v4 = Buffer.from(ns);
  v4[14] = 0x45;
  assert.equal(parseNd(v4, 14, nd), 'not-nd');
  assert.equal(parseNd(ns.subarray(0, 54), 14, nd), 'not-nd'); // no ICMPv6 type byte
});

test('hop limit other than 255 is nd-bad-hop-limit (a router forwarded it)', () => {
  for (const h of [0, 1, 64, 254]) {
    assert.equal(decode(encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B, hopLimit: h })).r, 'nd-bad-hop-limit');
    assert.equal(
      decode(encodeNa({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_A, router: false, solicited: false, override: true, hopLimit: h })).r,
      'nd-bad-hop-limit',
    );
  }
});

test('any flipped bit in the checksummed part is nd-bad-checksum', () => {
  const good = encodeNa({
    srcMac: MAC_A,
    srcIp: IP_A,
    dstIp: IP_B,
    ethDst: MAC_B,
    targetIp: IP_A,
    router: false,
    solicited: true,
    override: true,
  });
  const nd = newNdView();
  // Every bit of src, dst and the ICMPv6 message (the pseudo-header covers the addresses).
  for (let byte = 14 + 8; byte < good.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const f = Buffer.from(good);
      f[byte]! ^= 1 << bit;
      const r = parseNd(f, 14, nd);
      if (byte === 14 + 40) continue; // the type byte: 136 -> other types are not-nd
      assert.equal(r, 'nd-bad-checksum', `byte ${byte} bit ${bit}`);
    }
  }
});

test('payload length bounds: below 24 or beyond the frame is nd-short', () => {
  const good = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B });
  const nd = newNdView();
  const set = (len: number): Buffer => {
    const f = Buffer.from(good);
    f.writeUInt16BE(len, 18);
    return f;
  };
  assert.equal(parseNd(set(23), 14, nd), 'nd-short');
  assert.equal(parseNd(set(33), 14, nd), 'nd-short');
  assert.equal(parseNd(good.subarray(0, good.length - 1), 14, nd), 'nd-short');
  assert.equal(parseNd(fixChecksum(set(24)), 14, nd), null); // option cut off by the length: fine, no SLLA
  assert.equal(nd.linkAddr, -1);
  // Trailing Ethernet padding beyond the IPv6 payload is ignored.
  assert.equal(parseNd(Buffer.concat([good, Buffer.alloc(10)]), 14, nd), null);
  assert.equal(nd.linkAddr, MAC_A);
});

test('RFC 4861 validity checks are nd-malformed', () => {
  const nd = newNdView();
  const ns = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B });
  const edit = (base: Buffer, f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(base);
    f(b);
    return fixChecksum(b);
  };
  assert.equal(
    parseNd(
      edit(ns, (b) => (b[55] = 1)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // code 1
  assert.equal(
    parseNd(
      edit(ns, (b) => (b[62] = 0xff)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // multicast target
  assert.equal(
    parseNd(
      edit(ns, (b) => (b[79] = 0)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // option length 0
  assert.equal(
    parseNd(
      edit(ns, (b) => (b[79] = 2)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // option overruns
  const dad = encodeNs({ srcMac: MAC_A, srcIp: parseIpv6('::'), targetIp: IP_A });
  assert.equal(
    parseNd(
      edit(dad, (b) => IPV6_ALL_NODES.copy(b, 38)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // DAD not to solicited-node
  const dadSlla = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_A });
  assert.equal(
    parseNd(
      edit(dadSlla, (b) => b.fill(0, 22, 38)),
      14,
      nd,
    ),
    'nd-malformed',
  ); // DAD with SLLA
  const naMcastSolicited = encodeNa({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_A, router: false, solicited: true, override: false });
  assert.equal(parseNd(naMcastSolicited, 14, nd), 'nd-malformed');
});

test('unknown options are skipped; an SLLA of the wrong size is ignored', () => {
  const ns = encodeNs({ srcMac: MAC_A, srcIp: IP_A, targetIp: IP_B });
  const nd = newNdView();
  const f = Buffer.from(ns);
  f[78] = 14; // nonce option, same length
  assert.equal(parseNd(fixChecksum(f), 14, nd), null);
  assert.equal(nd.linkAddr, -1);
});

test('IPv6 text: RFC 5952 output and strict parsing', () => {
  const cases: Array<[string, string]> = [
    ['::', '::'],
    ['::1', '::1'],
    ['FE80:0:0:0:0:0:0:1', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [i, o] of cases) assert.equal(ipv6ToString(parseIpv6(i)), o, i);
  for (const t of ['', ':::', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '1:2:3:4:5:6:7::8']) {
    assert.throws(
      () => parseIpv6(t, 'lan.ip6'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
      t,
    );
  }
});

test('solicited-node group and its 33:33 MAC', () => {
  const g = solicitedNodeMulticast(parseIpv6('2001:db8::12:3456'));
  assert.equal(ipv6ToString(g), 'ff02::1:ff12:3456');
  assert.equal(macToString(ipv6MulticastMacKey(g)), '33:33:ff:12:34:56');
});

test('drop reasons are exported as a constant list', () => {
  assert.deepEqual([...ND_DROPS], ['nd-short', 'nd-bad-checksum', 'nd-bad-hop-limit', 'nd-malformed']);
});
