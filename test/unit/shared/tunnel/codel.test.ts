// SPDX-License-Identifier: UNLICENSED
// CoDel as the egress queue runs it, checked against a reference model written straight from the
// pseudo-code of RFC 8289 (section 5, a dequeue at a time), over random arrival and service traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoDel } from '../../../../src/shared/tunnel/codel.js';
import { EgressQueue } from '../../../../src/shared/tunnel/egress-queue.js';
import { recordSize } from '../../../../src/shared/tunnel/records.js';
import { prng } from '../../../helpers/prng.js';

const TARGET = 5;
const INTERVAL = 100;
const LEN = 1514;
const SIZE = recordSize(LEN);

/** RFC 8289's CoDel queue, kept as close to the RFC's text as TypeScript allows. */
class ReferenceCoDel {
  readonly q: { id: number; tstamp: number }[] = [];
  readonly dropped: number[] = [];
  firstAboveTime = 0;
  dropNext = 0;
  count = 0;
  lastcount = 0;
  dropping = false;

  bytes(): number {
    return this.q.length * SIZE;
  }

  doDequeue(now: number): { p: { id: number; tstamp: number } | null; okToDrop: boolean } {
    const p = this.q.shift() ?? null;
    if (p === null) {
      this.firstAboveTime = 0;
      return { p, okToDrop: false };
    }
    const sojourn = now - p.tstamp;
    let okToDrop = false;
    if (sojourn < TARGET || this.bytes() <= SIZE) {
      this.firstAboveTime = 0;
    } else if (this.firstAboveTime === 0) {
      this.firstAboveTime = now + INTERVAL;
    } else if (now >= this.firstAboveTime) {
      okToDrop = true;
    }
    return { p, okToDrop };
  }

  controlLaw(t: number, count: number): number {
    return t + INTERVAL / Math.sqrt(count);
  }

  dequeue(now: number): number | null {
    let r = this.doDequeue(now);
    if (r.p === null) {
      this.dropping = false;
      return null;
    }
    if (this.dropping) {
      if (!r.okToDrop) this.dropping = false;
      while (now >= this.dropNext && this.dropping) {
        this.dropped.push(r.p!.id);
        ++this.count;
        r = this.doDequeue(now);
        if (!r.okToDrop) this.dropping = false;
        else this.dropNext = this.controlLaw(this.dropNext, this.count);
      }
    } else if (r.okToDrop) {
      this.dropped.push(r.p.id);
      r = this.doDequeue(now);
      this.dropping = true;
      const delta = this.count - this.lastcount;
      this.count = 1;
      if (delta > 1 && now - this.dropNext < 16 * INTERVAL) this.count = delta;
      this.dropNext = this.controlLaw(now, this.count);
      this.lastcount = this.count;
    }
    return r.p?.id ?? null;
  }
}

test('the queue drops exactly the frames RFC 8289 drops, and delivers the rest in order (random traces)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = prng(seed);
    const ref = new ReferenceCoDel();
    const hold = 64 * SIZE;
    const q = new EgressQueue({ maxFrames: 100_000, holdUnsentBytes: hold, aqm: { targetMs: TARGET, intervalMs: INTERVAL } });
    const frame = Buffer.alloc(LEN);
    const refSent: number[] = [];
    const sent: number[] = [];
    let id = 0;
    // Phases of overload and of relief, so the controller enters, leaves and re-enters dropping.
    for (let now = 1; now <= 3_000; now++) {
      const phase = Math.floor(now / 500) % 2;
      const arrivals = phase === 0 ? Math.floor(rand() * 12) : Math.floor(rand() * 4);
      for (let i = 0; i < arrivals; i++) {
        ref.q.push({ id, tstamp: now });
        frame.writeUInt32BE(id, 14);
        q.push(1, frame, now);
        id++;
      }
      const service = Math.floor(rand() * 9);
      if (service === 0) continue;
      for (let i = 0; i < service; i++) {
        const p = ref.dequeue(now);
        if (p === null) break;
        refSent.push(p);
      }
      const views: Buffer[] = [];
      // The socket has room for exactly `service` records.
      q.drain(now, hold - service * SIZE, views);
      for (const v of views) for (let off = 0; off < v.length; off += SIZE) sent.push(v.readUInt32BE(off + recordSize(0) + 14));
    }
    assert.ok(ref.dropped.length > 0, `seed ${seed}: the trace makes CoDel drop`);
    assert.equal(q.counters.aqmDrops, ref.dropped.length, `seed ${seed}: drop count`);
    assert.deepEqual(sent, refSent, `seed ${seed}: the same frames leave, in the same order`);
  }
});

test('CoDel: one interval above target before the first drop, then faster by the control law', () => {
  const c = new CoDel(INTERVAL);
  assert.equal(c.offer(1, true), false, 'first time above target: the clock starts');
  assert.equal(c.offer(100, true), false, 'not yet a whole interval');
  assert.equal(c.offer(101, true), true, 'a whole interval above: drop');
  assert.equal(c.offer(101, true), false, 'the packet after the entering drop leaves');
  assert.equal(c.offer(150, true), false, 'next drop at 101 + 100/sqrt(1)');
  assert.equal(c.offer(201, true), true);
  assert.equal(c.offer(201, true), false, 'now < 201 + 100/sqrt(2)');
  assert.equal(c.offer(272, true), true, 'at 201 + 70.7');
  assert.equal(c.state.count, 3);
  assert.equal(c.offer(273, false), false, 'below target: leaves the dropping state');
  assert.equal(c.state.dropping, false);
  assert.equal(c.drops, 3);
});

test('CoDel: an empty queue ends the episode and restarts the clock', () => {
  const c = new CoDel(INTERVAL);
  c.offer(1, true);
  assert.equal(c.offer(101, true), true);
  c.empty();
  assert.equal(c.state.dropping, false);
  assert.equal(c.offer(102, true), false, 'above again: a new interval starts');
  assert.equal(c.offer(201, true), false);
  assert.equal(c.offer(202, true), true);
});
