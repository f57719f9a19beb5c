// SPDX-License-Identifier: UNLICENSED
// The tunnel client's reconnect backoff (the send queue's tests are in test/unit/shared/tunnel/egress-queue.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterLoss, backoffDelay, checkBackoffOptions, hintedDelay } from '../../../../src/agent/core/backoff.js';

const B = { initialMs: 100, maxMs: 2_000, jitter: 0.5 };

test('backoff doubles from initialMs up to maxMs, jitter only shortens within its fraction', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 10, 1000].map((a) => backoffDelay(a, B, 1)),
    [100, 200, 400, 800, 1600, 2000, 2000, 2000],
  );
  assert.equal(backoffDelay(0, B, 0), 50);
  assert.equal(backoffDelay(6, B, 0), 1000);
  assert.equal(backoffDelay(3, { ...B, jitter: 0 }, 0.3), 800);
  assert.throws(() => checkBackoffOptions({ initialMs: 0, maxMs: 1, jitter: 0 }), RangeError);
  assert.throws(() => checkBackoffOptions({ initialMs: 10, maxMs: 5, jitter: 0 }), RangeError);
  assert.throws(() => checkBackoffOptions({ initialMs: 1, maxMs: 5, jitter: 2 }), RangeError);
});

test("a headend's retry-after window widens the full-jitter spread but never shortens the client's own backoff", () => {
  const F = { initialMs: 250, maxMs: 30_000, jitter: 1 };
  assert.equal(hintedDelay(0, F, 5_000, 0.5), 2_500, 'spread over the 5 s window');
  assert.equal(hintedDelay(0, F, 5_000, 0), 0);
  assert.equal(hintedDelay(0, F, 5_000, 1), 5_000);
  assert.equal(hintedDelay(6, F, 5_000, 0.5), 8_000, 'the client backoff (16 s) is longer than the hint');
  assert.equal(hintedDelay(0, F, 0, 0.5), 125, 'a zero hint is the plain full-jitter backoff');
  // Uniform over the window: a fleet of 10 000 lands evenly in ten 500 ms slots.
  const slots = new Array<number>(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const d = hintedDelay(0, F, 5_000, (i + 0.5) / 10_000);
    slots[Math.min(9, Math.floor(d / 500))]!++;
  }
  assert.ok(
    slots.every((n) => n >= 990 && n <= 1_010),
    slots.join(','),
  );
});

test('after a lost session another headend is tried at once; alone, or asked to wait, the same one after a jittered delay', () => {
  const F = { initialMs: 250, maxMs: 2_000, jitter: 1 };
  assert.deepEqual(afterLoss(0, 2, F, null, 0.9), { index: 1, delayMs: 0 });
  assert.deepEqual(afterLoss(2, 3, F, null, 0.9), { index: 0, delayMs: 0 }, 'wraps around the list');
  assert.deepEqual(afterLoss(0, 1, F, null, 0.5), { index: 0, delayMs: 125 }, 'one headend: keeps the jitter');
  assert.deepEqual(afterLoss(1, 2, F, 4_000, 0.5), { index: 1, delayMs: 2_000 }, "a live headend's retry-after window is honoured");
});
