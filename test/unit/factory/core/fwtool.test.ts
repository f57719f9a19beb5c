// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fwtoolDataLength } from '../../../../src/factory/core/fwtool.js';

test('fwtool trailers are stripped from the end of a sysupgrade image', () => {
  const data = Buffer.alloc(1000, 1);
  const chunk = (type: number, body: Buffer): Buffer => {
    const t = Buffer.alloc(16);
    t.writeUInt32BE(0x46577830, 0);
    t[8] = type;
    t.writeUInt32BE(body.length + 16, 12);
    return Buffer.concat([body, t]);
  };
  const file = Buffer.concat([data, chunk(1, Buffer.from('{"x":1}')), chunk(0, Buffer.alloc(40, 9))]);
  const readAt = (pos: number, len: number): Buffer => file.subarray(pos, pos + len);
  assert.equal(fwtoolDataLength(file.length, readAt), 1000);
  assert.equal(
    fwtoolDataLength(data.length, (p, l) => data.subarray(p, p + l)),
    1000,
  );
});
