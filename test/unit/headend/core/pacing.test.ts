// SPDX-License-Identifier: UNLICENSED
// Admission pacing decisions (issue 19): the handshake slots, the bounded wait queue, the start-rate
// bucket, and the reconnect window a shutting-down headend hands its fleet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeGate, reconnectWindowMs, workerShare, type PacingOptions } from '../../../../src/headend/core/pacing.js';

const O: PacingOptions = { maxHandshakes: 2, maxQueued: 3, maxWaitMs: 1_000, acceptPerS: 1_000_000, acceptBurst: 1_000_000 };

test('handshakes start up to the slot count; the next wait in order; past the queue they are refused', () => {
  const g = new HandshakeGate<string>(O, 0);
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => g.offer(0, x)),
    ['start', 'start', 'queued', 'queued', 'queued', 'refused'],
  );
  assert.equal(g.inProgress, 2);
  assert.equal(g.queued, 3);
  assert.deepEqual(g.pump(10), { start: [], expired: [], evicted: [] }, 'no slot free, nothing moves');
  g.finished();
  assert.deepEqual(g.pump(20), { start: ['c'], expired: [], evicted: [] }, 'the oldest waiting takes the free slot');
  g.finished();
  g.finished();
  assert.deepEqual(g.pump(30), { start: ['d', 'e'], expired: [], evicted: [] });
  assert.equal(g.queued, 0);
});

test('a connection that waited past maxWaitMs is refused, never started (its client may be gone)', () => {
  const g = new HandshakeGate<string>(O, 0);
  g.offer(0, 'a');
  g.offer(0, 'b');
  g.offer(0, 'old');
  g.offer(900, 'young');
  g.finished();
  assert.deepEqual(g.pump(1_001), { start: ['young'], expired: ['old'], evicted: [] });
  assert.equal(g.inProgress, 2);
});

test('a newcomer never overtakes the queue, even when a slot is free', () => {
  const g = new HandshakeGate<string>({ ...O, maxHandshakes: 1 }, 0);
  g.offer(0, 'a');
  g.offer(0, 'b');
  g.finished();
  assert.equal(g.offer(1, 'c'), 'queued', 'b waits first');
  assert.deepEqual(g.pump(1).start, ['b']);
});

test('the start rate is a token bucket: a burst, then acceptPerS, never more than the burst saved', () => {
  const g = new HandshakeGate<number>({ maxHandshakes: 1_000_000, maxQueued: 0, maxWaitMs: 0, acceptPerS: 10, acceptBurst: 3 }, 0);
  const at = (t: number, n: number): number => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (g.offer(t, i) === 'start') ok++;
    return ok;
  };
  assert.equal(at(0, 10), 3, 'the burst');
  assert.equal(at(100, 10), 1, 'one per 100 ms at 10/s');
  assert.equal(at(150, 10), 0, 'half a token is not a handshake');
  assert.equal(at(200, 10), 1);
  assert.equal(at(60_000, 10), 3, 'a long quiet spell saves no more than the burst');
  assert.equal(at(59_000, 5), 0, 'a clock that steps back refills nothing');
});

test('a storm through the queue: every connection started or refused, at no more than the rate, none started late', () => {
  const o = { maxHandshakes: 8, maxQueued: 4_096, maxWaitMs: 5_000, acceptPerS: 500, acceptBurst: 50 };
  const g = new HandshakeGate<number>(o, 0);
  const arrived = new Map<number, number>();
  let started = 0;
  let refused = 0;
  let expired = 0;
  let worstWait = 0;
  const perSecond = new Array<number>(20).fill(0);
  for (let t = 0; t < 20_000; t++) {
    // 5,000 arrive in the first second; a handshake takes 2 ms.
    for (let i = 0; t < 1_000 && i < 5; i++) {
      const id = arrived.size;
      arrived.set(id, t);
      const d = g.offer(t, id);
      if (d === 'refused') refused++;
      if (d === 'start') started++;
      if (d === 'start') perSecond[Math.floor(t / 1_000)]!++;
    }
    if (t % 2 === 0) for (let i = g.inProgress; i > 0; i--) g.finished();
    const p = g.pump(t);
    for (const id of p.start) worstWait = Math.max(worstWait, t - (arrived.get(id) ?? t));
    started += p.start.length;
    perSecond[Math.floor(t / 1_000)]! += p.start.length;
    expired += p.expired.length;
  }
  assert.equal(g.queued, 0);
  assert.equal(started + refused + expired, 5_000, 'each connection is started or refused, once');
  assert.ok(worstWait <= o.maxWaitMs, `a handshake started after ${worstWait} ms`);
  assert.ok(
    perSecond.every((n, i) => n <= 500 + (i === 0 ? 50 : 1)),
    perSecond.join(','),
  );
  assert.ok(started >= 2_500, `started ${started}, refused ${refused}, expired ${expired}`);
});

test('sources are served round-robin: a newcomer does not wait behind a flood from other addresses', () => {
  const g = new HandshakeGate<string>({ ...O, maxHandshakes: 1, maxQueued: 1_000 }, 0);
  g.offer(0, 'first', 'flood-1');
  for (let i = 0; i < 300; i++) g.offer(0, `f1-${i}`, 'flood-1');
  for (let i = 0; i < 300; i++) g.offer(0, `f2-${i}`, 'flood-2');
  g.offer(1, 'device', 'office');
  const order: string[] = [];
  for (let t = 2; t < 10 && !order.includes('device'); t++) {
    g.finished();
    order.push(...g.pump(t).start);
  }
  assert.deepEqual(order, ['f1-0', 'f2-0', 'device'], 'one per source in turn');
  for (let t = 10; g.queued > 0; t++) {
    g.finished();
    order.push(...g.pump(t).start);
  }
  const flood1 = order.filter((x) => x.startsWith('f1-'));
  assert.deepEqual(
    flood1,
    Array.from({ length: 300 }, (_, i) => `f1-${i}`),
    'one source keeps its arrival order',
  );
});

test("a full queue makes room for a source with fewer waiting by evicting the fattest source's newest", () => {
  const g = new HandshakeGate<string>({ ...O, maxHandshakes: 1, maxQueued: 4 }, 0);
  g.offer(0, 'running', 'flood');
  for (let i = 0; i < 4; i++) assert.equal(g.offer(0, `f${i}`, 'flood'), 'queued');
  assert.equal(g.offer(0, 'f4', 'flood'), 'refused', 'the flood cannot evict itself');
  assert.equal(g.offer(0, 'device', 'office'), 'queued');
  assert.equal(g.queued, 4);
  g.finished();
  const p = g.pump(1);
  assert.deepEqual(p.evicted, ['f3'], 'the flood gave up its newest');
  assert.deepEqual(p.start, ['f0']);
  g.finished();
  assert.deepEqual(g.pump(2).start, ['device'], 'then the newcomer, before the rest of the flood');
});

test('bad pacing options are refused', () => {
  assert.throws(() => new HandshakeGate({ ...O, maxHandshakes: 0 }, 0), RangeError);
  assert.throws(() => new HandshakeGate({ ...O, acceptPerS: 0 }, 0), RangeError);
});

test('the reconnect window is the time the accept rate needs for every session, within its bounds', () => {
  assert.equal(reconnectWindowMs(5_000, 1_000), 5_000);
  assert.equal(reconnectWindowMs(10, 1_000), 1_000, 'at least the minimum');
  assert.equal(reconnectWindowMs(1_000_000, 100), 60_000, 'at most the maximum');
  assert.equal(reconnectWindowMs(0, 1_000), 1_000);
  assert.equal(reconnectWindowMs(3, 2), 1_500);
});

test("a worker's share of the listener's limits: the headend's totals split evenly, rounded up", () => {
  const listen = {
    maxConnections: 20_000,
    maxPerSource: 1_000,
    maxHandshakes: 1_024,
    maxQueued: 4_096,
    maxWaitMs: 5_000,
    acceptPerS: 300,
    acceptBurst: 30,
  };
  assert.equal(workerShare(listen, 1), listen);
  assert.deepEqual(workerShare(listen, 4), {
    maxConnections: 5_000,
    maxPerSource: 250,
    maxHandshakes: 256,
    maxQueued: 1_024,
    maxWaitMs: 5_000,
    acceptPerS: 75,
    acceptBurst: 8,
  });
  // Never below one, and a queue turned off stays off.
  assert.equal(workerShare({ ...listen, acceptBurst: 1, maxQueued: 0 }, 3).acceptBurst, 1);
  assert.equal(workerShare({ ...listen, maxQueued: 0 }, 3).maxQueued, 0);
});
