// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeEthernet,
  ETH_MAX_FRAME,
  ETHERNET_DROPS,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  newEthernetView,
  parseEthernet,
} from '../../../../src/shared/l2/ethernet.js';
import { BROADCAST_MAC_KEY, macKeyToBuffer } from '../../../../src/shared/l2/mac.js';

const A = 0x02005e100001;
const B = 0x02005e100002;

/** A raw frame: dst, src, then the given 16-bit words (tags and EtherType), then payload, total `len`. */
function raw(words: number[], len: number): Buffer {
  const f = Buffer.alloc(len);
  macKeyToBuffer(B).copy(f, 0);
  macKeyToBuffer(A).copy(f, 6);
  words.forEach((w, i) => f.writeUInt16BE(w, 12 + 2 * i));
  return f;
}

test('untagged frame: decode(encode(x)) gives back every field and the payload', () => {
  const payload = Buffer.from('hello, layer two', 'utf8');
  const f = encodeEthernet({ dst: B, src: A, etherType: ETHERTYPE_IPV4, payload });
  const v = newEthernetView();
  assert.equal(parseEthernet(f, v), null);
  assert.deepEqual(v, { dst: B, src: A, etherType: ETHERTYPE_IPV4, vlanCount: 0, vlanTci: 0, l3Offset: 14 });
  assert.deepEqual(f.subarray(v.l3Offset, v.l3Offset + payload.length), payload);
});

test('short frames are zero-padded to 60 bytes; full-size ones are not', () => {
  const f = encodeEthernet({ dst: BROADCAST_MAC_KEY, src: A, etherType: ETHERTYPE_ARP, payload: Buffer.alloc(28, 1) });
  assert.equal(f.length, 60);
  assert.ok(f.subarray(42).every((b) => b === 0));
  assert.equal(encodeEthernet({ dst: B, src: A, etherType: ETHERTYPE_IPV4, payload: Buffer.alloc(1500) }).length, 1514);
});

test('one 802.1Q tag and a QinQ pair: outer TCI, inner EtherType, L3 offset', () => {
  const v = newEthernetView();
  const payload = Buffer.from([1, 2, 3, 4]);
  const q = encodeEthernet({ dst: B, src: A, etherType: ETHERTYPE_ARP, payload, vlans: [{ tci: 0x2064 }] });
  assert.equal(q.readUInt16BE(12), ETHERTYPE_VLAN);
  assert.equal(parseEthernet(q, v), null);
  assert.deepEqual(v, { dst: B, src: A, etherType: ETHERTYPE_ARP, vlanCount: 1, vlanTci: 0x2064, l3Offset: 18 });
  const qq = encodeEthernet({
    dst: B,
    src: A,
    etherType: ETHERTYPE_IPV4,
    payload,
    vlans: [{ tpid: ETHERTYPE_QINQ, tci: 100 }, { tci: 200 }],
  });
  assert.equal(parseEthernet(qq, v), null);
  assert.deepEqual(v, { dst: B, src: A, etherType: ETHERTYPE_IPV4, vlanCount: 2, vlanTci: 100, l3Offset: 22 });
  assert.deepEqual(qq.subarray(22, 26), payload);
});

test('size bounds: 14 is the minimum, 1514 + 4 per tag the maximum', () => {
  const v = newEthernetView();
  assert.equal(parseEthernet(Buffer.alloc(0), v), 'eth-short');
  assert.equal(parseEthernet(raw([ETHERTYPE_IPV4], 14).subarray(0, 13), v), 'eth-short');
  assert.equal(parseEthernet(raw([ETHERTYPE_IPV4], 14), v), null);
  assert.equal(v.l3Offset, 14);
  assert.equal(parseEthernet(raw([ETHERTYPE_IPV4], 1514), v), null);
  assert.equal(parseEthernet(raw([ETHERTYPE_IPV4], 1515), v), 'eth-oversize');
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 5, ETHERTYPE_IPV4], 1518), v), null);
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 5, ETHERTYPE_IPV4], 1519), v), 'eth-oversize');
  assert.equal(parseEthernet(raw([ETHERTYPE_QINQ, 5, ETHERTYPE_VLAN, 6, ETHERTYPE_IPV4], ETH_MAX_FRAME), v), null);
  assert.equal(parseEthernet(raw([ETHERTYPE_QINQ, 5, ETHERTYPE_VLAN, 6, ETHERTYPE_IPV4], ETH_MAX_FRAME + 1), v), 'eth-oversize');
  assert.equal(parseEthernet(Buffer.alloc(9000), v), 'eth-oversize');
});

test('a tag cut short by the end of the frame is eth-short', () => {
  const v = newEthernetView();
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN], 14), v), 'eth-short');
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 5], 17), v), 'eth-short');
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 5, ETHERTYPE_IPV4], 18), v), null);
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 5, ETHERTYPE_VLAN, 6], 21), v), 'eth-short');
});

test('a third tag is refused', () => {
  const v = newEthernetView();
  const f = raw([ETHERTYPE_QINQ, 1, ETHERTYPE_VLAN, 2, ETHERTYPE_VLAN, 3, ETHERTYPE_IPV4], 64);
  assert.equal(parseEthernet(f, v), 'eth-too-many-tags');
  assert.throws(
    () => encodeEthernet({ dst: B, src: A, etherType: 1, payload: Buffer.alloc(0), vlans: [{ tci: 1 }, { tci: 2 }, { tci: 3 }] }),
    RangeError,
  );
});

test('802.3 length frames are accepted as LLC when the length fits, refused otherwise', () => {
  const v = newEthernetView();
  // An STP BPDU: 802.3 length 38 (LLC 42 42 03 + 35-byte BPDU), padded to 60.
  assert.equal(parseEthernet(raw([38], 60), v), null);
  assert.equal(v.etherType, 38);
  assert.equal(parseEthernet(raw([46], 60), v), null); // exactly fills
  assert.equal(parseEthernet(raw([47], 60), v), 'eth-bad-length'); // claims more than present
  assert.equal(parseEthernet(raw([1500], 1514), v), null);
  assert.equal(parseEthernet(raw([1501], 1514), v), 'eth-bad-length'); // 1501..1535 undefined
  assert.equal(parseEthernet(raw([0x05ff], 1514), v), 'eth-bad-length');
  assert.equal(parseEthernet(raw([0x0600], 60), v), null); // first EtherType value
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 7, 100], 60), v), 'eth-bad-length');
  assert.equal(parseEthernet(raw([ETHERTYPE_VLAN, 7, 42], 60), v), null);
});

test('encodeEthernet refuses payloads above 1500 bytes', () => {
  assert.throws(() => encodeEthernet({ dst: B, src: A, etherType: ETHERTYPE_IPV4, payload: Buffer.alloc(1501) }), RangeError);
});

test('the drop reasons are exported as a constant list for counters', () => {
  assert.deepEqual([...ETHERNET_DROPS], ['eth-short', 'eth-oversize', 'eth-too-many-tags', 'eth-bad-length']);
});
