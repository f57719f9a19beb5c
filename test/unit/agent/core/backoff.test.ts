// SPDX-License-Identifier: UNLICENSED
// The tunnel client's reconnect backoff (the send queue's tests are in test/unit/shared/tunnel/egress-queue.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, checkBackoffOptions } from '../../../../src/agent/core/backoff.js';

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
