// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MacTable, type MacLearnResult } from '../../../../src/shared/l2/mac-table.js';
import { AlarmSet } from '../../../../src/agent/core/l2/alarms.js';
import { prng as rng } from '../../../helpers/prng.js';

const A = 0x02_00_00_00_00_0a;
const B = 0x02_00_00_00_00_0b;

/** The agent's sides; the LAN side wins a freeze. */
type Side = 'lan' | 'tunnel';

test('an entry ages out exactly at ageMs after it was last seen', () => {
  const t = new MacTable({ ageMs: 300_000 });
  assert.equal(t.learn(A, 'lan', 0, 1000), 'new');
  assert.equal(t.lookup(A, 300_999)?.side, 'lan');
  assert.equal(t.lookup(A, 301_000), undefined);
  assert.equal(t.learn(A, 'lan', 0, 200_000), 'refreshed');
  assert.equal(t.lookup(A, 499_999)?.side, 'lan');
  assert.equal(t.sweep(500_000), 1);
  assert.equal(t.size, 0);
});

test('a full table stops learning, never evicts, alarms, and clears the alarm once there is room', () => {
  const alarms = new AlarmSet();
  const t = new MacTable({ maxEntries: 10, ageMs: 1000, alarms });
  for (let i = 0; i < 10; i++) assert.equal(t.learn(0x0200_0000_0000 + i, 'lan', 0, 0), 'new');
  assert.equal(t.learn(A, 'tunnel', 0, 10), 'table-full');
  assert.equal(t.lookup(A, 10), undefined);
  for (let i = 0; i < 10; i++) assert.ok(t.lookup(0x0200_0000_0000 + i, 10), 'nothing was evicted');
  assert.ok(alarms.isActive('mac-table-full', ''));
  // Existing entries still refresh and move while full.
  assert.equal(t.learn(0x0200_0000_0000, 'tunnel', 0, 20), 'moved');
  // Once entries age out, learning works again and housekeeping clears the alarm.
  assert.equal(t.learn(A, 'tunnel', 0, 1000), 'new', 'dead entries make room without an explicit sweep');
  t.sweep(1000);
  assert.equal(alarms.isActive('mac-table-full', ''), false);
});

test('5 moves within 180 s freeze the entry on the LAN side and alarm; the freeze ends and clears', () => {
  const alarms = new AlarmSet();
  const t = new MacTable<Side>({ freezeMs: 60_000, alarms, freezeSide: 'lan' });
  t.learn(A, 'lan', 0, 0);
  const sides: Side[] = ['tunnel', 'lan', 'tunnel', 'lan'];
  sides.forEach((s, i) => assert.equal(t.learn(A, s, 0, (i + 1) * 10_000), 'moved'));
  assert.equal(t.learn(A, 'tunnel', 0, 50_000), 'frozen');
  assert.equal(t.lookup(A, 50_000)?.side, 'lan', 'pinned on the LAN side');
  assert.ok(alarms.isActive('mac-move-frozen', '02:00:00:00:00:0a'));
  assert.equal(t.learn(A, 'tunnel', 0, 60_000), 'ignored-frozen');
  assert.equal(t.lookup(A, 60_000)?.side, 'lan');
  // A frozen entry does not age while frozen, even unseen for longer than ageMs... (here freeze < age)
  assert.equal(t.learn(A, 'tunnel', 0, 110_000), 'moved', 'after the freeze, moves are applied again');
  assert.equal(alarms.isActive('mac-move-frozen', '02:00:00:00:00:0a'), false);
});

test('moves spread wider than the window never freeze', () => {
  const t = new MacTable({ moveThreshold: 5, moveWindowMs: 180_000 });
  t.learn(A, 'lan', 0, 0);
  let side: Side = 'lan';
  for (let i = 1; i <= 20; i++) {
    side = side === 'lan' ? 'tunnel' : 'lan';
    assert.equal(t.learn(A, side, 0, i * 45_000), 'moved', `move ${i}`);
  }
});

test("freezeSide 'latest' pins where the last frame came from (headend use)", () => {
  const t = new MacTable<'session' | 'vtep'>({ moveThreshold: 2, freezeSide: 'latest' });
  t.learn(B, 'session', 1, 0);
  assert.equal(t.learn(B, 'session', 2, 1), 'moved', 'a port change on the same side is a move');
  assert.equal(t.learn(B, 'vtep', 0, 2), 'frozen');
  assert.deepEqual([t.lookup(B, 3)?.side, t.lookup(B, 3)?.port], ['vtep', 0]);
});

test('flushPort forgets one session’s entries only', () => {
  const t = new MacTable();
  t.learn(A, 'tunnel', 7, 0);
  t.learn(B, 'tunnel', 8, 0);
  assert.equal(t.flushPort('tunnel', 7, 1), 1);
  assert.equal(t.lookup(A, 1), undefined);
  assert.equal(t.lookup(B, 1)?.port, 8);
});

test('invalid options are refused', () => {
  assert.throws(() => new MacTable({ ageMs: 0 }), /ageMs/);
  assert.throws(() => new MacTable({ maxEntries: -1 }), /maxEntries/);
});

// --- reference model -------------------------------------------------------------------------------------

interface ModelEntry {
  side: Side;
  port: number;
  lastSeen: number;
  frozenUntil: number;
  moves: number[];
}

/** The documented semantics, written the slow and obvious way (full scans, no expiry bookkeeping). */
class NaiveMacTable {
  readonly m = new Map<number, ModelEntry>();
  constructor(
    readonly age: number,
    readonly max: number,
    readonly threshold: number,
    readonly window: number,
    readonly freeze: number,
  ) {}
  live(e: ModelEntry, now: number): boolean {
    return now - e.lastSeen < this.age || now < e.frozenUntil;
  }
  liveCount(now: number): number {
    return [...this.m.values()].filter((e) => this.live(e, now)).length;
  }
  lookup(key: number, now: number): ModelEntry | undefined {
    const e = this.m.get(key);
    return e && this.live(e, now) ? e : undefined;
  }
  learn(key: number, side: Side, port: number, now: number): MacLearnResult {
    const e = this.lookup(key, now);
    if (!e) {
      this.m.delete(key);
      if (this.liveCount(now) >= this.max) return 'table-full';
      this.m.set(key, { side, port, lastSeen: now, frozenUntil: 0, moves: [] });
      return 'new';
    }
    if (e.side === side && e.port === port) {
      e.lastSeen = now;
      return 'refreshed';
    }
    if (now < e.frozenUntil) return 'ignored-frozen';
    e.moves = e.moves.filter((t) => now - t < this.window);
    e.moves.push(now);
    if (e.moves.length >= this.threshold) {
      e.moves = [];
      if (!(e.side === 'lan' && side !== 'lan')) {
        e.side = side;
        e.port = port;
      }
      e.lastSeen = now;
      e.frozenUntil = now + this.freeze;
      return 'frozen';
    }
    e.side = side;
    e.port = port;
    e.lastSeen = now;
    return 'moved';
  }
}

test('reference model: MacTable agrees with a naive model over seeded random operations', () => {
  for (let seed = 1; seed <= 150; seed++) {
    const r = rng(seed);
    // Coarse times (multiples of 100 ms) so operations often land exactly on an age/window/freeze boundary.
    const age = 100 * (10 + Math.floor(r() * 300));
    const max = 2 + Math.floor(r() * 12);
    const threshold = 2 + Math.floor(r() * 4);
    const window = 100 * (10 + Math.floor(r() * 200));
    const freeze = 100 * (5 + Math.floor(r() * 400));
    const real = new MacTable<Side>({
      ageMs: age,
      maxEntries: max,
      moveThreshold: threshold,
      moveWindowMs: window,
      freezeMs: freeze,
      alarms: new AlarmSet(),
      freezeSide: 'lan',
    });
    const model = new NaiveMacTable(age, max, threshold, window, freeze);
    const keys = Array.from({ length: 4 + Math.floor(r() * 20) }, (_, i) => 0x0200_0000_0000 + i * 0x1_0001);
    let now = 0;
    const ctx = (op: number, what: string): string => `seed ${seed}, op ${op}, now ${now}: ${what}`;
    for (let op = 0; op < 2000; op++) {
      const x = r();
      if (x < 0.3) now += 100 * Math.floor(r() * (r() < 0.9 ? 5 : 400));
      const key = keys[Math.floor(r() * keys.length)] ?? 0;
      const y = r();
      if (y < 0.6) {
        const side: Side = r() < 0.5 ? 'lan' : 'tunnel';
        const port = r() < 0.8 ? 0 : 1 + Math.floor(r() * 2);
        const got = real.learn(key, side, port, now);
        const want = model.learn(key, side, port, now);
        if (got !== want) assert.fail(ctx(op, `learn ${key.toString(16)} ${side}/${port} = ${got}, model ${want}`));
      } else if (y < 0.95) {
        const g = real.lookup(key, now);
        const w = model.lookup(key, now);
        const gs = g ? `${g.side}/${g.port}` : 'none';
        const ws = w ? `${w.side}/${w.port}` : 'none';
        if (gs !== ws) assert.fail(ctx(op, `lookup ${key.toString(16)} = ${gs}, model ${ws}`));
      } else {
        real.sweep(now);
      }
      if (real.liveCount(now) !== model.liveCount(now)) assert.fail(ctx(op, `live ${real.liveCount(now)}, model ${model.liveCount(now)}`));
      if (real.size > max) assert.fail(ctx(op, `stored ${real.size} > max ${max}`));
    }
  }
});
