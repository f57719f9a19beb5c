// SPDX-License-Identifier: UNLICENSED
// The TAP addon's checksum sum (inetSum, native/tap/tap.c), which the agent's LAN-side coalescing runs
// over every segment: equal to the TypeScript sum on any length, offset, view and starting value; bad
// arguments are a RangeError, never a read out of bounds; a build that sums wrongly is not used; and a
// corrupt segment is still caught with the C sum in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkedInetSum } from '../../../../src/shared/native/inet-sum.js';
import { TcpCoalescer } from '../../../../src/shared/l2/tcp-coalesce.js';
import {
  GSO_TCPV4,
  VNET_F_NEEDS_CSUM,
  inetSum,
  parseOffload,
  segmentOffload,
  writeVnetHdr,
  type Offload,
} from '../../../../src/shared/l2/tso-segment.js';
import { loadTapAddon } from '../../../../src/shared/native/addon.js';
import { silentLogger, type Logger } from '../../../../src/shared/log.js';
import { prng, randBytes, randInt } from '../../../helpers/prng.js';

function cSum(): NonNullable<ReturnType<typeof loadTapAddon>['inetSum']> {
  const addon = loadTapAddon();
  assert.ok(addon.inetSum, 'this build has inetSum');
  return addon.inetSum.bind(addon);
}

test('inetSum in C equals the TypeScript sum: 3,000 random lengths, offsets, views and starting values', () => {
  const c = cSum();
  const rand = prng(20261206);
  for (let i = 0; i < 3_000; i++) {
    const big = randBytes(rand, randInt(rand, 0, 9_100));
    // A view into a larger buffer: the C side must start at the view, not at its ArrayBuffer.
    const lead = randInt(rand, 0, 7);
    const view = big.subarray(Math.min(lead, big.length));
    const from = randInt(rand, 0, view.length);
    const to = randInt(rand, from, view.length);
    const initial = [0, 0xffff, randInt(rand, 0, 0xfffff), 2 ** 44][i % 4] ?? 0;
    assert.equal(
      c(view, from, to, initial),
      inetSum(view, from, to, initial),
      `case ${i}: ${view.length} bytes [${from}, ${to}) + ${initial}`,
    );
  }
  // All ones: carries on every word.
  const ff = Buffer.alloc(65_536, 0xff);
  assert.equal(c(ff, 0, ff.length, 0), 0xffff);
  assert.equal(c(ff, 0, 65_535, 1), inetSum(ff, 0, 65_535, 1));
});

test('inetSum refuses what it cannot sum with a RangeError, and reads nothing out of bounds', () => {
  const c = cSum();
  const b = Buffer.alloc(100, 1);
  const bad: [unknown, number, number, number][] = [
    [b, 10, 5, 0],
    [b, 0, 101, 0],
    [b.subarray(50), 0, 51, 0],
    [b, 0, 10, -1],
    [b, 0, 10, 2 ** 53],
    [new Uint16Array(10), 0, 4, 0],
    ['frame', 0, 1, 0],
  ];
  for (const [bytes, from, to, initial] of bad)
    assert.throws(
      () => c(bytes as Uint8Array, from, to, initial),
      { name: 'RangeError' },
      `inetSum(${String(bytes).slice(0, 20)}, ${from}, ${to}, ${initial})`,
    );
  assert.equal(c(b, 100, 100, 5), 5, 'an empty range is the starting value');
});

test('the agent uses the C sum only once it agrees with TypeScript; a wrong or throwing one is refused and said', () => {
  const said: string[] = [];
  const log: Logger = { ...silentLogger, warn: (msg) => void said.push(msg) };
  const c = cSum();
  assert.equal(checkedInetSum(c, log), c);
  assert.equal(checkedInetSum(undefined, log), undefined);
  assert.equal(
    checkedInetSum((b, f, t, i) => inetSum(b, f, t, i) ^ (t - f > 1_000 ? 1 : 0), log),
    undefined,
  );
  assert.equal(
    checkedInetSum(() => {
      throw new Error('no');
    }, log),
    undefined,
  );
  assert.equal(said.length, 2);
  assert.match(said[0] ?? '', /sums checksums wrongly/);
  assert.match(said[1] ?? '', /cannot sum checksums/);
});

test('with the C sum the coalescer still merges good segments and leaves a corrupt one alone', () => {
  const frame = Buffer.alloc(54 + 8 * 1_000);
  frame.writeUIntBE(0x020000000014, 0, 6);
  frame.writeUIntBE(0x020000000032, 6, 6);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(frame.length - 14, 16);
  frame[22] = 64;
  frame[23] = 6;
  frame.writeUInt32BE(0xc0a80132, 26);
  frame.writeUInt32BE(0xc0a80114, 30);
  frame.writeUInt16BE(5201, 34);
  frame.writeUInt16BE(40000, 36);
  frame[46] = 0x50;
  frame[47] = 0x10;
  for (let i = 54; i < frame.length; i++) frame[i] = i & 0xff;
  const hdr = Buffer.alloc(10);
  writeVnetHdr(hdr, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 54, gsoSize: 1_000, csumStart: 34, csumOffset: 16 });
  const segs: Buffer[] = [];
  segmentOffload(parseOffload(hdr, frame) as Offload, frame, segs);
  segs[5]![60]! ^= 0x01;
  const c = new TcpCoalescer(undefined, cSum());
  const out: string[] = [];
  c.coalesce(segs, { plain: (fs) => fs.forEach(() => out.push('plain')), superFrame: (_h, _f, n) => void out.push(`super:${n}`) });
  assert.deepEqual(out, ['super:5', 'plain', 'super:2']);
  assert.equal(c.counters.badChecksum, 1);
});
