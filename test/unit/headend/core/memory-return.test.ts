// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryReturn } from '../../../../src/headend/core/memory-return.js';

const policy = { minDrop: 100, minFraction: 0.1, minIntervalMs: 30_000, maxAdmitting: 16 };

/** Feeds one count per 2 s tick; returns the ticks (0-based) at which a trim was asked for. */
function run(m: MemoryReturn, counts: number[], startMs = 0): number[] {
  const at: number[] = [];
  counts.forEach((n, i) => {
    if (m.tick(startMs + i * 2_000, n)) at.push(i);
  });
  return at;
}

test('a teardown of many sessions asks for one trim once the count has settled, not while it falls', () => {
  const m = new MemoryReturn(policy);
  assert.deepEqual(run(m, [2_000, 2_000, 1_200, 300, 1, 1, 1, 1]), [5]);
});

test('churn does not trim: small drops, or drops small beside the peak', () => {
  assert.deepEqual(run(new MemoryReturn(policy), [500, 500, 450, 450, 420, 420, 500, 500]), []);
  // 150 sessions gone of 5,000 is 3 %: churn on a big headend.
  assert.deepEqual(run(new MemoryReturn(policy), [5_000, 5_000, 4_850, 4_850, 4_850]), []);
});

test('at most one trim per interval; the next teardown is measured from the count after the trim', () => {
  const m = new MemoryReturn(policy);
  const counts = [2_000, 0, 0, 2_000, 2_000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  // Trimmed at tick 2; the second drop settles at tick 6 but waits for 30 s after the first (tick 17).
  assert.deepEqual(run(m, counts), [2, 17]);
});

test('not during a reconnect storm: the trim waits until the handshakes have passed, then runs once', () => {
  const m = new MemoryReturn(policy);
  // A teardown, then the fleet returning: hundreds in their handshake while the count looks settled.
  const counts = [2_000, 2_000, 5, 5, 5, 5, 5, 5];
  const admitting = [0, 0, 400, 300, 17, 16, 0, 0];
  const at: number[] = [];
  counts.forEach((n, i) => {
    if (m.tick(i * 2_000, n, admitting[i])) at.push(i);
  });
  assert.deepEqual(at, [5], 'asked for once the handshakes fell to the bound, not before, not twice');
});
