// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumAdd, checksumAddWord, checksumFinish } from '../../../../../src/agent/core/l2/checksum.js';

test('RFC 1071 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
  const b = Buffer.from('0001f203f4f5f6f7', 'hex');
  assert.equal(checksumFinish(checksumAdd(b, 0, b.length)), ~0xddf2 & 0xffff);
});

test('an odd trailing byte counts as the high byte of a padded word', () => {
  const odd = Buffer.from('0102ab', 'hex');
  const even = Buffer.from('0102ab00', 'hex');
  assert.equal(checksumFinish(checksumAdd(odd, 0, 3)), checksumFinish(checksumAdd(even, 0, 4)));
});

test('a buffer with its checksum inserted sums to zero, at any length and offset', () => {
  for (const len of [2, 20, 1500, 65534]) {
    const b = Buffer.alloc(len + 3);
    for (let i = 0; i < b.length; i++) b[i] = (i * 7919 + 13) & 0xff;
    b.writeUInt16BE(0, 1);
    b.writeUInt16BE(checksumFinish(checksumAdd(b, 1, len)), 1);
    assert.equal(checksumFinish(checksumAdd(b, 1, len)), 0, `len ${len}`);
  }
});

test('words added one by one equal the same bytes summed', () => {
  const b = Buffer.from('ffffffff0001', 'hex');
  const s = checksumAddWord(0x0001, checksumAddWord(0xffff, checksumAddWord(0xffff)));
  assert.equal(checksumFinish(s), checksumFinish(checksumAdd(b, 0, 6)));
});
