// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkClock, DEFAULT_MIN_TIME_S } from '../../../../../src/agent/adapters/identity/clock.js';
import { backoffDelayMs, renewAtOf, type IdentityOptions } from '../../../../../src/agent/adapters/identity/enroll.js';
import { IdentityStatusTracker } from '../../../../../src/agent/core/identity-status.js';

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
  const o = { backoffS: { initial: 5, max: 300 }, random: () => 1 - Number.EPSILON } as unknown as IdentityOptions;
  const full = [0, 1, 2, 3, 4, 5, 6, 10].map((a) => Math.round(backoffDelayMs(o, a) / 1000));
  assert.deepEqual(full, [5, 10, 20, 40, 80, 160, 300, 300]);
  const low = { ...o, random: () => 0 } as IdentityOptions;
  assert.equal(backoffDelayMs(low, 0), 2500);
  assert.equal(backoffDelayMs(o, 7, 42), 42_000);
  assert.equal(backoffDelayMs(o, 7, 0), 1000);
  assert.equal(backoffDelayMs(o, 7, 99_999), 3_600_000);
});

test('status snapshots are plain data; a state change moves "since"; undefined clears a field', () => {
  let now = 0;
  const s = new IdentityStatusTracker(() => now);
  const seen: string[] = [];
  s.onChange((x) => seen.push(x.state));
  now = 1000;
  s.update({ state: 'waiting-for-time', reason: 'clock unset' });
  assert.deepEqual(s.snapshot(), { state: 'waiting-for-time', reason: 'clock unset', attempts: 0, since: '1970-01-01T00:00:01.000Z' });
  now = 2000;
  s.update({ reason: 'still unset' });
  assert.equal(s.snapshot().since, '1970-01-01T00:00:01.000Z');
  s.update({ state: 'ready', reason: undefined });
  assert.equal('reason' in s.snapshot(), false);
  assert.deepEqual(seen, ['waiting-for-time', 'waiting-for-time', 'ready']);
  const snap = s.snapshot();
  snap.state = 'error';
  assert.equal(s.snapshot().state, 'ready', 'snapshots are copies');
});
