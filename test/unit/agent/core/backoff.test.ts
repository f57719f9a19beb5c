// SPDX-License-Identifier: UNLICENSED
// Pure helpers of the tunnel client: reconnect backoff and the bounded head-drop send queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, checkBackoffOptions } from '../../../../src/agent/core/backoff.js';
import { SendQueue } from '../../../../src/shared/tunnel/egress-queue.js';
import { RecordDecoder } from '../../../../src/shared/tunnel/records.js';

const B = { initialMs: 100, maxMs: 2_000, jitter: 0.5 };

test('backoff doubles from initialMs up to maxMs, jitter only shortens within its fraction', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 10, 1000].map((a) => backoffDelay(a, B, 1)), [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
  assert.equal(backoffDelay(0, B, 0), 50);
  assert.equal(backoffDelay(6, B, 0), 1000);
  assert.equal(backoffDelay(3, { ...B, jitter: 0 }, 0.3), 800);
  assert.throws(() => checkBackoffOptions({ initialMs: 0, maxMs: 1, jitter: 0 }), RangeError);
  assert.throws(() => checkBackoffOptions({ initialMs: 10, maxMs: 5, jitter: 0 }), RangeError);
  assert.throws(() => checkBackoffOptions({ initialMs: 1, maxMs: 5, jitter: 2 }), RangeError);
});

const frame = (n: number, len = 60): Buffer => {
  const f = Buffer.alloc(len);
  f.writeUInt32BE(n, 14);
  return f;
};

test('a full queue drops the oldest frames and keeps the newest, copying the input', () => {
  const q = new SendQueue(4);
  const reused = Buffer.alloc(60);
  for (let i = 0; i < 10; i++) {
    reused.writeUInt32BE(i, 14);
    assert.equal(q.push(reused), true);
  }
  assert.equal(q.drops, 6);
  assert.equal(q.length, 4);
  const out = Buffer.alloc(q.recordBytes);
  const { end, frames } = q.drainInto(out, 0, out.length, 100);
  assert.equal(end, out.length);
  assert.equal(frames, 4);
  const seen: number[] = [];
  new RecordDecoder((vni, f) => {
    assert.equal(vni, 100);
    seen.push(f.readUInt32BE(14));
  }, () => assert.fail()).push(out);
  assert.deepEqual(seen, [6, 7, 8, 9]);
});

test('drainInto stops before the byte limit and resumes where it stopped', () => {
  const q = new SendQueue(8);
  for (let i = 0; i < 5; i++) q.push(frame(i, 1000));
  const buf = Buffer.alloc(2_100);
  assert.equal(q.drainInto(buf, 0, buf.length, 1).frames, 2);
  assert.equal(q.length, 3);
  assert.equal(q.drainInto(Buffer.alloc(q.recordBytes), 0, q.recordBytes, 1).frames, 3);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test('frames no record can carry are refused, not queued', () => {
  const q = new SendQueue(2);
  assert.equal(q.push(Buffer.alloc(13)), false);
  assert.equal(q.push(Buffer.alloc(1523)), false);
  assert.equal(q.length, 0);
});
