// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendQueue } from '../../../../src/shared/tunnel/egress-queue.js';
import { RecordDecoder } from '../../../../src/shared/tunnel/records.js';

const frame = (tag: number): Buffer => Buffer.alloc(60, tag);

function drainTags(q: SendQueue): number[] {
  const buf = Buffer.alloc(q.recordBytes);
  const { end } = q.drainInto(buf, 0, buf.length, 42);
  const tags: number[] = [];
  new RecordDecoder(
    (_vni, f) => tags.push(f[0] ?? -1),
    () => assert.fail('no record should be dropped'),
  ).push(buf.subarray(0, end));
  return tags;
}

test('frames that waited past the cutoff are dropped from the head, newer ones are sent in order', () => {
  const q = new SendQueue(8);
  q.push(frame(1), 10);
  q.push(frame(2), 11);
  q.push(frame(3), 13);
  assert.equal(q.dropOlderThan(12), 2);
  assert.equal(q.expired, 2);
  assert.equal(q.drops, 0, 'expiry is not counted as a full-queue drop');
  assert.equal(q.length, 1);
  assert.equal(q.bytes, 60);
  assert.deepEqual(drainTags(q), [3]);
});

test('nothing expires when every frame is newer than the cutoff; the default stamp 0 keeps old callers working', () => {
  const q = new SendQueue(4);
  q.push(frame(1), 100);
  assert.equal(q.dropOlderThan(50), 0);
  q.push(frame(2));
  assert.equal(q.dropOlderThan(0), 0);
  assert.deepEqual(drainTags(q), [1, 2]);
});

test('expiry keeps the ring consistent across wrap-around with head-drops', () => {
  const q = new SendQueue(3);
  for (let i = 1; i <= 5; i++) q.push(frame(i), i); // 1 and 2 head-dropped when full
  assert.equal(q.drops, 2);
  assert.equal(q.dropOlderThan(4), 1); // frame 3
  q.push(frame(6), 6);
  assert.deepEqual(drainTags(q), [4, 5, 6]);
});
