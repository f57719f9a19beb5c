// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backoffDelayMs,
  checkClock,
  DEFAULT_MIN_TIME_S,
  renewAtOf,
  type BackoffSettings,
} from '../../../../../src/agent/core/identity/policy.js';

test('the clock is untrusted until it reaches min_time', () => {
  const min = 1_780_000_000;
  assert.equal(checkClock(0, min).ok, false);
  assert.equal(checkClock(min * 1000 - 1, min).ok, false);
  assert.equal(checkClock(min * 1000, min).ok, true);
  const r = checkClock(0, min);
  assert.ok(!r.ok && /1970-01-01.*earlier than the image build time.*sysntpd/.test(r.reason));
  assert.ok(DEFAULT_MIN_TIME_S > 1_700_000_000);
});

test('renewal is due at two thirds of the lifetime', () => {
  const nb = new Date('2026-11-01T00:00:00Z');
  const na = new Date('2026-12-01T00:00:00Z'); // 30 days
  assert.equal(renewAtOf({ notBefore: nb, notAfter: na }).toISOString(), '2026-11-21T00:00:00.000Z');
});

test('backoff doubles up to the cap with jitter; Retry-After wins, clamped to 1 s..1 h', () => {
  const o = { backoffS: { initial: 5, max: 300 }, random: () => 1 - Number.EPSILON } as BackoffSettings;
  const full = [0, 1, 2, 3, 4, 5, 6, 10].map((a) => Math.round(backoffDelayMs(o, a) / 1000));
  assert.deepEqual(full, [5, 10, 20, 40, 80, 160, 300, 300]);
  const low = { ...o, random: () => 0 } as BackoffSettings;
  assert.equal(backoffDelayMs(low, 0), 2500);
  assert.equal(backoffDelayMs(o, 7, 42), 42_000);
  assert.equal(backoffDelayMs(o, 7, 0), 1000);
  assert.equal(backoffDelayMs(o, 7, 99_999), 3_600_000);
});
