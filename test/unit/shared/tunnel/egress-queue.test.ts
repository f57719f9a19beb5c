// SPDX-License-Identifier: UNLICENSED
// The tunnel's bounded egress queue, the same at both ends: head-drop when full (memory bound), a hold
// while the socket is full, CoDel on what waits (its decisions: test/unit/shared/tunnel/codel.test.ts).
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
  new EgressQueue({ maxFrames, holdUnsentBytes: 1 << 20, ...extra });

test('a full queue drops the oldest frames and keeps the newest, copying the input', () => {
  const q = agentQueue(4);
  const reused = Buffer.alloc(60);
  for (let i = 0; i < 10; i++) {
    reused.writeUInt32BE(i, 14);
    assert.equal(q.push(100, reused, 0), true);
  }
  assert.equal(q.counters.overflowDrops, 6);
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
  const q = agentQueue(8, { holdUnsentBytes: 4_100 });
  for (let i = 0; i < 5; i++) q.push(1, numbered(i, 1000), 0);
  const views: Buffer[] = [];
  assert.equal(q.drain(0, 2_000, views), 2, '2100 bytes of room: two 1010-byte records');
  assert.equal(q.length, 3);
  assert.equal(q.drain(0, 0, views), 3);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test('a queue holds its frames while the socket holds the bound, then sends at least one record', () => {
  const q = agentQueue(8, { holdUnsentBytes: 1_000 });
  q.push(1, numbered(1, 1000), 0);
  q.push(1, numbered(2, 1000), 0);
  const views: Buffer[] = [];
  assert.equal(q.held(1_000), true);
  assert.equal(q.drain(0, 1_000, views), 0);
  assert.equal(views.length, 0);
  assert.equal(q.drain(0, 999, views), 1, 'one full record always fits');
  assert.equal(q.length, 1);
});

test('frames no record can carry are refused, not queued', () => {
  const q = agentQueue(2);
  assert.equal(q.push(1, Buffer.alloc(13), 0), false);
  assert.equal(q.push(1, Buffer.alloc(1523), 0), false);
  assert.equal(q.length, 0);
  assert.equal(q.counters.overflowDrops + q.counters.aqmDrops, 0);
});

test('a queue grows past its first slots up to its bound and keeps order across chunks', () => {
  const q = new EgressQueue({ maxFrames: 2_000, holdUnsentBytes: 1 << 24 });
  for (let i = 0; i < 2_000; i++) assert.equal(q.push(9, numbered(i, 1500), 0), true);
  assert.equal(q.counters.overflowDrops, 0);
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
  q.push(1, frame(1), 0);
  const views: Buffer[] = [];
  q.drain(0, 0, views);
  const copy = Buffer.from(views[0] as Buffer);
  for (let i = 0; i < 50; i++) q.push(1, frame(0xee), 0);
  q.clear();
  q.push(1, frame(0xdd), 0);
  assert.deepEqual(views[0], copy);
});

test("an idle session's trickle does not walk a full-size chunk; a burst's frames share one", () => {
  const q = agentQueue(1_024);
  const bufferOf = (at: number): number => {
    const views: Buffer[] = [];
    q.drain(at, 0, views);
    assert.equal(views.length, 1);
    return (views[0] as Buffer).buffer.byteLength;
  };
  // A broadcast to a quiet session: a small piece of Node's shared pool, not a 64 KB chunk of its own.
  q.push(1, frame(1), 0);
  assert.ok(bufferOf(0) <= 8 * 1024);
  // A burst: frames after the first go into full-size chunks, and go on doing so while traffic lasts.
  for (let i = 0; i < 40; i++) q.push(1, numbered(i, 1500), 5_000);
  const burst: Buffer[] = [];
  q.drain(5_000, 0, burst);
  assert.ok(burst.some((v) => v.buffer.byteLength >= 64 * 1024));
  q.push(1, frame(2), 5_500);
  assert.ok(bufferOf(5_500) >= 64 * 1024, 'half a second later the chunk is still in use');
  // Quiet for a second again: the next frame goes back to the pool and the big chunk can be freed.
  q.push(1, frame(3), 7_000);
  assert.ok(bufferOf(7_000) <= 8 * 1024);
});

test('a late event loop is not congestion: frames that waited 300 ms for one turn are all sent', () => {
  const q = agentQueue(64);
  for (let i = 0; i < 8; i++) q.push(1, numbered(i, 1000), 1_000 + i);
  const views: Buffer[] = [];
  assert.equal(q.drain(1_300, 0, views), 8, 'one drain after the stall sends every frame');
  assert.equal(q.counters.aqmDrops, 0);
  assert.equal(q.aqm.dropping, false);
  assert.ok(q.aqm.sojournMs >= 290, 'the sojourn is measured');
  // A second stall right after: still no standing queue, still nothing dropped.
  for (let i = 0; i < 8; i++) q.push(1, numbered(i, 1000), 1_310);
  assert.equal(q.drain(1_700, 0, views), 8);
  assert.equal(q.counters.aqmDrops, 0);
});

test('a standing queue (the socket takes less than arrives) is dropped at the head by CoDel, not by overflow', () => {
  const q = agentQueue(10_000, { holdUnsentBytes: 10 * recordSize(1000) });
  const views: Buffer[] = [];
  let n = 0;
  // 20 frames per ms arrive, the socket takes 10 per ms: the queue stands and grows.
  for (let t = 1; t <= 400; t++) {
    for (let i = 0; i < 20; i++) q.push(1, numbered(n++, 1000), t);
    views.length = 0;
    q.drain(t, 0, views);
  }
  assert.ok(q.counters.aqmDrops > 0, 'CoDel drops under the standing queue');
  assert.equal(q.counters.overflowDrops, 0, 'the memory bound was never reached');
  assert.equal(q.aqm.dropping, true);
  assert.ok(q.aqm.drops === q.counters.aqmDrops);
});

/** An IPv4 TCP or ICMP frame of `len` bytes between two hosts, `port` telling flows apart, `seq` in the payload. */
function ipFrame(o: { proto: number; port: number; seq: number; len?: number }): Buffer {
  const f = Buffer.alloc(o.len ?? 1514);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f[14 + 9] = o.proto;
  f.writeUInt32BE(0xc0a80a05, 14 + 12);
  f.writeUInt32BE(0xc0a80a64, 14 + 16);
  f.writeUInt16BE(o.port, 34);
  f.writeUInt16BE(5201, 36);
  f.writeUInt32BE(o.seq, 60);
  return f;
}
const seqOf = (f: Buffer): string => `${f.readUInt16BE(34)}:${f.readUInt32BE(60)}`;

function drainAll(q: EgressQueue, now: number, roomRecords: number): Buffer[] {
  const views: Buffer[] = [];
  q.drain(now, q.options.holdUnsentBytes - roomRecords * recordSize(1514), views);
  const out: Buffer[] = [];
  const d = new RecordDecoder(
    (_v, f) => out.push(Buffer.from(f)),
    () => assert.fail('no record should be dropped'),
  );
  for (const v of views) d.push(v);
  return out;
}

test('flow queuing: a ping behind a bulk flow standing queue leaves first (a sparse flow never waits)', () => {
  const q = agentQueue(4_096, { holdUnsentBytes: 1 << 20 });
  for (let i = 0; i < 500; i++) q.push(1, ipFrame({ proto: 6, port: 40000, seq: i }), 1);
  assert.equal(drainAll(q, 2, 10).length, 10, 'the bulk flow is busy: an old flow now');
  q.push(1, ipFrame({ proto: 1, port: 0, seq: 7, len: 98 }), 3);
  const next = drainAll(q, 3, 4).map(seqOf);
  assert.equal(next[0], '0:7', `the ping leaves first: ${next.join(' ')}`);
  assert.equal(q.length, 487);
});

test('flow queuing: two bulk flows share the socket equally; each keeps its order', () => {
  const q = agentQueue(4_096, { holdUnsentBytes: 1 << 20 });
  for (let i = 0; i < 300; i++) q.push(1, ipFrame({ proto: 6, port: 40000, seq: i }), 1);
  for (let i = 0; i < 300; i++) q.push(1, ipFrame({ proto: 6, port: 40001, seq: i }), 1);
  const out = drainAll(q, 2, 100).map(seqOf);
  const a = out.filter((s) => s.startsWith('40000:'));
  const b = out.filter((s) => s.startsWith('40001:'));
  assert.ok(Math.abs(a.length - b.length) <= 2, `fair share: ${a.length} vs ${b.length}`);
  for (const flow of [a, b])
    assert.deepEqual(
      flow,
      [...flow].sort((x, y) => Number(x.split(':')[1]) - Number(y.split(':')[1])),
    );
});

test('flow queuing: a full queue drops from its fattest flow, never from a sparse one', () => {
  const q = agentQueue(64, { holdUnsentBytes: 1 << 20 });
  q.push(1, ipFrame({ proto: 1, port: 0, seq: 1, len: 98 }), 1);
  for (let i = 0; i < 100; i++) q.push(1, ipFrame({ proto: 6, port: 40000, seq: i }), 1);
  assert.equal(q.counters.overflowDrops, 37);
  const out = drainAll(q, 2, 100).map(seqOf);
  assert.ok(out.includes('0:1'), 'the ping survived');
  assert.equal(out.filter((s) => s.startsWith('40000:'))[0], '40000:37', 'the bulk flow lost its oldest');
});

test('flow queuing: frames of every flow leave in their order, whatever the mix (random)', () => {
  const q = agentQueue(10_000, { holdUnsentBytes: 1 << 20 });
  const sent = new Map<number, number>();
  const seen = new Map<number, number>();
  let x = 12345;
  const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < 20; i++) {
      const port = 1000 + Math.floor(rand() * 50);
      const seq = sent.get(port) ?? 0;
      sent.set(port, seq + 1);
      q.push(1, ipFrame({ proto: port % 2 === 0 ? 6 : 17, port, seq, len: 64 + Math.floor(rand() * 1400) }), round);
    }
    for (const f of drainAll(q, round, 1 + Math.floor(rand() * 30))) {
      const port = f.readUInt16BE(34);
      const seq = f.readUInt32BE(60);
      assert.ok(seq >= (seen.get(port) ?? 0), `flow ${port} reordered`);
      seen.set(port, seq + 1);
    }
  }
});
