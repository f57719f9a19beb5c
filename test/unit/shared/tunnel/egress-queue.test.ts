// SPDX-License-Identifier: UNLICENSED
// The tunnel's bounded egress queue in both of its modes: the agent's ('drop-oldest': head-drop when
// full, a delay budget, a hold while the socket is full) and the headend's ('refuse-newest': a bound on
// unsent bytes at push time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EgressQueue, type EgressQueueOptions } from '../../../../src/shared/tunnel/egress-queue.js';
import { RecordDecoder, recordSize } from '../../../../src/shared/tunnel/records.js';

const frame = (tag: number): Buffer => Buffer.alloc(60, tag);
const numbered = (n: number, len = 60): Buffer => {
  const f = Buffer.alloc(len);
  f.writeUInt32BE(n, 14);
  return f;
};
const agentQueue = (maxFrames: number, extra: Partial<EgressQueueOptions> = {}): EgressQueue =>
  new EgressQueue({ overflow: 'drop-oldest', maxFrames, maxUnsentBytes: 1 << 20, maxDelayMs: 1, ...extra });

/** Drains everything at `now` and decodes the views: the records as the peer would read them. */
function drainRecords(q: EgressQueue, now = 0, unsent = 0): { vni: number; frame: Buffer }[] {
  const views: Buffer[] = [];
  q.drain(now, unsent, views);
  const out: { vni: number; frame: Buffer }[] = [];
  const d = new RecordDecoder(
    (vni, f) => out.push({ vni, frame: Buffer.from(f) }),
    () => assert.fail('no record should be dropped'),
  );
  for (const v of views) assert.equal(d.push(v), null);
  return out;
}
const drainTags = (q: EgressQueue, now = 0): number[] => drainRecords(q, now).map((r) => r.frame[0] ?? -1);

test('frames that waited past the delay budget are dropped from the head, newer ones are sent in order', () => {
  const q = agentQueue(8);
  q.push(42, frame(1), 10, 0);
  q.push(42, frame(2), 11, 0);
  q.push(42, frame(3), 13, 0);
  assert.equal(q.expire(13), 2);
  assert.equal(q.counters.expired, 2);
  assert.equal(q.counters.drops, 0, 'expiry is not counted as a full-queue drop');
  assert.equal(q.length, 1);
  assert.equal(q.bytes, 60);
  assert.deepEqual(drainTags(q, 13), [3]);
});

test('nothing expires when every frame is within the budget; a frame stamped 0 is kept at now 1', () => {
  const q = agentQueue(4);
  q.push(42, frame(1), 100, 0);
  assert.equal(q.expire(51), 0);
  q.push(42, frame(2), 0, 0);
  assert.equal(q.expire(1), 0);
  assert.deepEqual(drainTags(q, 1), [1, 2]);
});

test('expiry keeps the ring consistent across wrap-around with head-drops', () => {
  const q = agentQueue(3);
  for (let i = 1; i <= 5; i++) q.push(42, frame(i), i, 0); // 1 and 2 head-dropped when full
  assert.equal(q.counters.drops, 2);
  assert.equal(q.expire(5), 1); // frame 3
  q.push(42, frame(6), 6, 0);
  assert.deepEqual(drainTags(q, 5), [4, 5, 6]);
});

test('a full queue drops the oldest frames and keeps the newest, copying the input', () => {
  const q = agentQueue(4);
  const reused = Buffer.alloc(60);
  for (let i = 0; i < 10; i++) {
    reused.writeUInt32BE(i, 14);
    assert.equal(q.push(100, reused, 0, 0), true);
  }
  assert.equal(q.counters.drops, 6);
  assert.equal(q.length, 4);
  const bytes = q.recordBytes;
  const views: Buffer[] = [];
  assert.equal(q.drain(0, 0, views), 4);
  assert.equal(
    views.reduce((n, v) => n + v.length, 0),
    bytes,
  );
  assert.equal(views.length, 1, 'contiguous records leave as one view');
  const seen: number[] = [];
  new RecordDecoder(
    (vni, f) => {
      assert.equal(vni, 100);
      seen.push(f.readUInt32BE(14));
    },
    () => assert.fail(),
  ).push(views[0] as Buffer);
  assert.deepEqual(seen, [6, 7, 8, 9]);
  assert.equal(q.counters.sentFrames, 4);
  assert.equal(q.counters.sentBytes, 240);
});

test('a drain stops before the room the socket has left and resumes where it stopped', () => {
  const q = agentQueue(8, { maxUnsentBytes: 4_100 });
  for (let i = 0; i < 5; i++) q.push(1, numbered(i, 1000), 0, 0);
  const views: Buffer[] = [];
  assert.equal(q.drain(0, 2_000, views), 2, '2100 bytes of room: two 1010-byte records');
  assert.equal(q.length, 3);
  assert.equal(q.drain(0, 0, views), 3);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test('a drop-oldest queue holds its frames while the socket holds the bound, then sends at least one record', () => {
  const q = agentQueue(8, { maxUnsentBytes: 1_000 });
  q.push(1, numbered(1, 1000), 0, 0);
  q.push(1, numbered(2, 1000), 0, 0);
  const views: Buffer[] = [];
  assert.equal(q.held(1_000), true);
  assert.equal(q.drain(0, 1_000, views), 0);
  assert.equal(views.length, 0);
  assert.equal(q.drain(0, 999, views), 1, 'one full record always fits');
  assert.equal(q.length, 1);
});

test('frames no record can carry are refused, not queued', () => {
  const q = agentQueue(2);
  assert.equal(q.push(1, Buffer.alloc(13), 0, 0), false);
  assert.equal(q.push(1, Buffer.alloc(1523), 0, 0), false);
  assert.equal(q.length, 0);
  assert.equal(q.counters.drops + q.counters.refused, 0);
});

test('refuse-newest: a frame that would take the unsent bytes past the bound is refused and counted', () => {
  const q = new EgressQueue({ overflow: 'refuse-newest', maxFrames: Infinity, maxUnsentBytes: 3 * recordSize(60) });
  assert.equal(q.push(7, frame(1), 0, 0), true);
  assert.equal(q.push(7, frame(2), 0, recordSize(60)), true, 'socket + queue = 2 records, third fits');
  assert.equal(q.push(7, frame(3), 0, recordSize(60)), false, 'socket + queue + this = 4 records');
  assert.equal(q.counters.refused, 1);
  assert.equal(q.held(1 << 30), false, 'a refuse-newest queue never holds at drain');
  const got = drainRecords(q, 1_000_000, 1 << 30);
  assert.deepEqual(
    got.map((r) => [r.vni, r.frame[0]]),
    [
      [7, 1],
      [7, 2],
    ],
    'no expiry, no byte limit at drain: everything leaves',
  );
  assert.equal(q.counters.drops + q.counters.expired, 0);
});

test('refuse-newest grows past its first slots and keeps order across chunks', () => {
  const q = new EgressQueue({ overflow: 'refuse-newest', maxFrames: Infinity, maxUnsentBytes: 1 << 24 });
  for (let i = 0; i < 2_000; i++) assert.equal(q.push(9, numbered(i, 1500), 0, 0), true);
  const views: Buffer[] = [];
  assert.equal(q.drain(0, 0, views), 2_000);
  assert.ok(views.length > 1, 'records spread over several chunks');
  const seen: number[] = [];
  const d = new RecordDecoder(
    (_v, f) => seen.push(f.readUInt32BE(14)),
    () => assert.fail(),
  );
  for (const v of views) d.push(v);
  assert.deepEqual(
    seen,
    Array.from({ length: 2_000 }, (_, i) => i),
  );
});

test('views already handed out are never overwritten by later pushes', () => {
  const q = agentQueue(64);
  q.push(1, frame(1), 0, 0);
  const views: Buffer[] = [];
  q.drain(0, 0, views);
  const copy = Buffer.from(views[0] as Buffer);
  for (let i = 0; i < 50; i++) q.push(1, frame(0xee), 0, 0);
  q.clear();
  q.push(1, frame(0xdd), 0, 0);
  assert.deepEqual(views[0], copy);
});
