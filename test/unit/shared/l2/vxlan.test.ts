// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readVxlanVni,
  VXLAN_DROPS,
  VXLAN_FLAG_I,
  VXLAN_HEADER_LEN,
  VXLAN_MAX_VNI,
  VXLAN_UDP_PORT,
  writeVxlanHeader,
} from '../../../../src/shared/l2/vxlan.js';

test('RFC 7348 constants', () => {
  assert.equal(VXLAN_HEADER_LEN, 8);
  assert.equal(VXLAN_FLAG_I, 0x08);
  assert.equal(VXLAN_UDP_PORT, 4789);
});

test('on send: I flag set and every reserved bit zero, even over dirty memory', () => {
  const b = Buffer.alloc(12, 0xff);
  writeVxlanHeader(b, 2, 0x123456);
  assert.equal(b.subarray(2, 10).toString('hex'), '0800000012345600');
  assert.equal(b[1], 0xff);
  assert.equal(b[10], 0xff);
});

test('decode(encode(vni)) == vni across the 24-bit range', () => {
  const b = Buffer.alloc(8);
  for (const vni of [0, 1, 0xff, 0x100, 0xffff, 0x10000, 4242, VXLAN_MAX_VNI]) {
    writeVxlanHeader(b, 0, vni);
    assert.equal(readVxlanVni(b, 0), vni);
  }
});

test('on receive: reserved bits and GBP/GPE bits are ignored', () => {
  const b = Buffer.from('ff ff ff ff 00 10 01 ff'.replaceAll(' ', ''), 'hex');
  assert.equal(readVxlanVni(b, 0), 0x1001);
  const gbp = Buffer.from('88 00 12 34 00 00 05 00'.replaceAll(' ', ''), 'hex'); // G bit + policy id
  assert.equal(readVxlanVni(gbp, 0), 5);
});

test('no I flag and short headers are drops with a reason', () => {
  assert.equal(readVxlanVni(Buffer.from('f700000000000100', 'hex'), 0), 'vxlan-no-i-flag');
  assert.equal(readVxlanVni(Buffer.alloc(7, 8), 0), 'vxlan-short');
  assert.equal(readVxlanVni(Buffer.alloc(16, 8), 9), 'vxlan-short');
  assert.equal(readVxlanVni(Buffer.alloc(16, 8), -1), 'vxlan-short');
  assert.deepEqual([...VXLAN_DROPS], ['vxlan-short', 'vxlan-no-i-flag']);
});

test('writing a VNI outside 24 bits or past the buffer is a programming error', () => {
  const b = Buffer.alloc(8);
  for (const vni of [-1, VXLAN_MAX_VNI + 1, 1.5, Number.NaN]) assert.throws(() => writeVxlanHeader(b, 0, vni), RangeError);
  assert.throws(() => writeVxlanHeader(b, 1, 1), RangeError);
});
