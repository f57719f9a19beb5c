// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMbr, firstPartitionStart } from '../../../../src/factory/core/mbr.js';

function mbrWith(parts: [type: number, startLba: number, count: number][]): Buffer {
  const s = Buffer.alloc(512);
  parts.forEach(([type, start, count], i) => {
    const e = 446 + i * 16;
    s[e + 4] = type;
    s.writeUInt32LE(start, e + 8);
    s.writeUInt32LE(count, e + 12);
  });
  s[510] = 0x55;
  s[511] = 0xaa;
  return s;
}

test('MBR: the rockchip layout, empty slots, GPT and a missing signature', () => {
  const r = parseMbr(
    mbrWith([
      [0x83, 65536, 32768],
      [0x83, 131072, 212992],
    ]),
  );
  assert.ok(r.ok);
  assert.equal(firstPartitionStart(r), 32 * 1024 * 1024);
  assert.equal(r.partitions.length, 2);
  const g = parseMbr(mbrWith([[0xee, 1, 1000]]));
  assert.ok(g.ok && g.protectiveGpt);
  assert.equal(parseMbr(Buffer.alloc(512)).ok, false);
  assert.equal(parseMbr(Buffer.alloc(10)).ok, false);
});
