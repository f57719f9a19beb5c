// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeRecord,
  MAX_RECORD,
  MIN_RECORD,
  RecordDecoder,
  recordSize,
  STREAM_DROPS,
  STREAM_ERRORS,
  writeRecord,
  type StreamDrop,
  type StreamError,
} from '../../../../src/shared/tunnel/records.js';
import { prng, randBytes, randInt, seedFromEnv } from '../../../helpers/prng.js';

interface Got {
  records: Array<{ vni: number; frame: Buffer }>;
  drops: StreamDrop[];
  errors: StreamError[];
  decoder: RecordDecoder;
}

function collector(): Got {
  const records: Got['records'] = [];
  const drops: StreamDrop[] = [];
  const decoder = new RecordDecoder(
    (vni, frame) => records.push({ vni, frame: Buffer.from(frame) }),
    (r) => drops.push(r),
  );
  return { records, drops, errors: [], decoder };
}

function feed(g: Got, chunks: Buffer[]): Got {
  for (const c of chunks) {
    const e = g.decoder.push(c);
    if (e) g.errors.push(e);
  }
  return g;
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

const frameOf = (len: number, fill: number): Buffer => Buffer.alloc(len, fill);

test('record layout: u16 length counting VXLAN + frame, then the VXLAN header, then the frame', () => {
  const frame = frameOf(60, 0xab);
  const r = encodeRecord(0x0a0b0c, frame);
  assert.equal(r.length, 2 + 8 + 60);
  assert.equal(r.readUInt16BE(0), 68);
  assert.equal(r.subarray(2, 10).toString('hex'), '080000000a0b0c00');
  assert.deepEqual(r.subarray(10), frame);
  assert.equal(recordSize(60), r.length);
  assert.equal(MIN_RECORD, 22);
  assert.equal(MAX_RECORD, 1530);
});

test('encoders refuse frames a peer would reject', () => {
  assert.throws(() => encodeRecord(1, Buffer.alloc(13)), RangeError);
  assert.throws(() => encodeRecord(1, Buffer.alloc(1523)), RangeError);
  assert.throws(() => encodeRecord(1 << 24, Buffer.alloc(60)), RangeError);
  assert.throws(() => writeRecord(Buffer.alloc(69), 0, 1, Buffer.alloc(60)), RangeError);
});

test('writeRecord coalesces many records into one buffer', () => {
  const frames = [frameOf(14, 1), frameOf(60, 2), frameOf(1522, 3)];
  const buf = Buffer.alloc(frames.reduce((n, f) => n + recordSize(f.length), 0));
  let off = 0;
  frames.forEach((f, i) => (off = writeRecord(buf, off, 100 + i, f)));
  assert.equal(off, buf.length);
  const g = feed(collector(), [buf]);
  assert.deepEqual(
    g.records,
    frames.map((frame, i) => ({ vni: 100 + i, frame })),
  );
  assert.deepEqual(g.drops, []);
});

/** A seeded stream of records of every size class plus the expected decode. */
function corpus(rand: () => number, n: number): { stream: Buffer; want: Got['records'] } {
  const want: Got['records'] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = [14, 60, 1514, 1522, randInt(rand, 14, 1522)][i % 5]!;
    const frame = randBytes(rand, len);
    const vni = randInt(rand, 0, 0xffffff);
    want.push({ vni, frame });
    parts.push(encodeRecord(vni, frame));
  }
  return { stream: Buffer.concat(parts), want };
}

test('every chunking gives the same records: one chunk, byte by byte, random splits', () => {
  const seed = seedFromEnv('CK_SEED');
  const rand = prng(seed);
  const { stream, want } = corpus(rand, 40);
  const whole = feed(collector(), [stream]);
  assert.deepEqual(whole.records, want, `seed ${seed}`);
  const bytes = feed(
    collector(),
    split(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    ),
  );
  assert.deepEqual(bytes.records, want, `seed ${seed}`);
  for (let round = 0; round < 200; round++) {
    const cuts = Array.from({ length: randInt(rand, 1, 60) }, () => randInt(rand, 0, stream.length));
    const g = feed(collector(), split(stream, cuts));
    assert.deepEqual(g.records, want, `seed ${seed} round ${round}`);
    assert.deepEqual(g.drops, []);
    assert.equal(g.decoder.buffered, 0);
  }
});

test('a split length prefix and a record ending exactly at a chunk edge', () => {
  const a = encodeRecord(1, frameOf(20, 1));
  const b = encodeRecord(2, frameOf(30, 2));
  const g = collector();
  assert.equal(g.decoder.push(Buffer.concat([a, b.subarray(0, 1)])), null);
  assert.equal(g.records.length, 1);
  assert.equal(g.decoder.buffered, 1);
  feed(g, [b.subarray(1, 5), b.subarray(5)]);
  assert.deepEqual(
    g.records.map((r) => r.vni),
    [1, 2],
  );
  feed(g, [Buffer.alloc(0)]);
  assert.equal(g.records.length, 2);
});

test('undersize records are skipped with a reason and the stream stays in sync', () => {
  const good = encodeRecord(7, frameOf(60, 7));
  const under = (len: number): Buffer => {
    const b = Buffer.alloc(2 + len, 0x08);
    b.writeUInt16BE(len, 0);
    return b;
  };
  const stream = Buffer.concat([under(0), good, under(1), under(MIN_RECORD - 1), good, under(8)]);
  for (const chunks of [
    [stream],
    split(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    ),
  ]) {
    const g = feed(collector(), chunks);
    assert.deepEqual(g.drops, ['record-undersize', 'record-undersize', 'record-undersize', 'record-undersize']);
    assert.deepEqual(
      g.records.map((r) => r.vni),
      [7, 7],
    );
    assert.deepEqual(g.errors, []);
  }
});

test('the smallest and largest legal records are delivered', () => {
  const g = feed(collector(), [encodeRecord(1, frameOf(14, 1)), encodeRecord(2, frameOf(1522, 2))]);
  assert.deepEqual(
    g.records.map((r) => r.frame.length),
    [14, 1522],
  );
  assert.deepEqual(g.drops, []);
});

test('records without the I flag are skipped with a reason; reserved bits are ignored', () => {
  const noI = encodeRecord(3, frameOf(60, 3));
  noI[2] = 0xf7; // every flag but I
  const reserved = encodeRecord(4, frameOf(60, 4));
  reserved[2] = 0xff;
  reserved.fill(0xff, 3, 6);
  reserved[9] = 0xff;
  const good = encodeRecord(5, frameOf(60, 5));
  const stream = Buffer.concat([noI, reserved, good]);
  for (const chunks of [
    [stream],
    split(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    ),
  ]) {
    const g = feed(collector(), chunks);
    assert.deepEqual(g.drops, ['record-no-i-flag']);
    assert.deepEqual(
      g.records.map((r) => r.vni),
      [4, 5],
    );
  }
});

test('an oversize length poisons the decoder: records before it survive, nothing after', () => {
  const before = encodeRecord(1, frameOf(60, 1));
  const over = Buffer.alloc(2 + MAX_RECORD + 1, 0x08);
  over.writeUInt16BE(MAX_RECORD + 1, 0);
  const after = encodeRecord(2, frameOf(60, 2));
  const stream = Buffer.concat([before, over, after]);
  for (const chunks of [
    [stream],
    split(
      stream,
      Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
    ),
  ]) {
    const g = feed(collector(), chunks);
    assert.deepEqual(
      g.records.map((r) => r.vni),
      [1],
    );
    assert.equal(g.decoder.poisoned, true);
    assert.ok(g.errors.length >= 1 && g.errors.every((e) => e === 'record-oversize'));
    assert.equal(g.decoder.push(encodeRecord(3, frameOf(60, 3))), 'record-oversize');
    assert.equal(g.records.length, 1);
  }
  const max = feed(collector(), [Buffer.from([0xff, 0xff])]);
  assert.deepEqual(max.errors, ['record-oversize']);
});

test('frames are views valid during the callback; a throwing callback does not break sync', () => {
  const seen: number[] = [];
  let calls = 0;
  const d = new RecordDecoder(
    (vni) => {
      calls++;
      if (calls === 1) throw new Error('consumer bug');
      seen.push(vni);
    },
    () => {},
  );
  const a = encodeRecord(1, frameOf(60, 1));
  const b = encodeRecord(2, frameOf(60, 2));
  assert.throws(() => d.push(a), /consumer bug/);
  assert.equal(d.push(b), null);
  assert.deepEqual(seen, [2]);
});

test('reasons are exported as constant lists', () => {
  assert.deepEqual([...STREAM_DROPS], ['record-undersize', 'record-no-i-flag']);
  assert.deepEqual([...STREAM_ERRORS], ['record-oversize']);
});
