// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import type { JobState } from '../../../../src/shared/ota/protocol.js';
import {
  applyReport,
  createRollout,
  inWindow,
  jobsToSend,
  markSent,
  parseCohort,
  parseWindow,
  selectCohort,
  widenCohort,
  type RolloutState,
} from '../../../../src/ota/core/rollout-state.js';

const fleet = Array.from({ length: 20 }, (_, i) => `R3S-${String(i + 1).padStart(4, '0')}`);
const T0 = new Date('2026-11-25T12:00:00Z');
const report = (s: RolloutState, serial: string, state: JobState, version = '2.0.0') =>
  applyReport(s, serial, { jobId: s.rolloutId, state, version, at: T0.toISOString() }, T0);

test('percent cohorts round down (at least one) and widening keeps earlier members', () => {
  const ten = selectCohort('r1', fleet, parseCohort('10%'));
  assert.equal(ten.length, 2);
  assert.equal(selectCohort('r1', fleet.slice(0, 3), parseCohort('10%')).length, 1);
  const fifty = selectCohort('r1', fleet, parseCohort('50%'));
  assert.equal(fifty.length, 10);
  for (const s of ten) assert.ok(fifty.includes(s));
  assert.deepEqual(selectCohort('r1', fleet, parseCohort('R3S-0003,R3S-0007')), ['R3S-0003', 'R3S-0007']);
  assert.throws(
    () => selectCohort('r1', fleet, parseCohort('R3S-9999')),
    (e) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
  );
  assert.throws(() => parseCohort('0%'));
  assert.throws(() => parseCohort('abc def'));
});

test('jobs go out up to max-parallel; the threshold pauses; a widened cohort picks up more devices', () => {
  let s = createRollout({
    rolloutId: 'r1',
    release: { version: '2.0.0', manifestSha256: 'x' },
    fleet,
    cohort: parseCohort('R3S-0001,R3S-0002,R3S-0003,R3S-0004'),
    failThreshold: 2,
    maxParallel: 2,
    now: T0,
  });
  let due = jobsToSend(s, T0);
  assert.deepEqual(due, ['R3S-0001', 'R3S-0002']);
  s = markSent(s, due, T0);
  assert.deepEqual(jobsToSend(s, T0), [], 'two in flight');
  s = report(s, 'R3S-0001', 'downloading');
  s = report(s, 'R3S-0001', 'succeeded');
  assert.equal(s.devices['R3S-0001']?.version, '2.0.0');
  due = jobsToSend(s, T0);
  assert.deepEqual(due, ['R3S-0003']);
  s = markSent(s, due, T0);
  s = report(s, 'R3S-0002', 'rolled-back', '1.0.0');
  assert.equal(s.status, 'active');
  s = markSent(s, jobsToSend(s, T0), T0);
  s = report(s, 'R3S-0003', 'rejected', '1.0.0');
  assert.equal(s.status, 'paused');
  assert.match(s.pauseReason ?? '', /2 device/);
  assert.deepEqual(jobsToSend(s, T0), []);
  // Reports for another rollout or from devices that were never sent a job change nothing.
  assert.equal(applyReport(s, 'R3S-0010', { jobId: 'r1', state: 'succeeded', version: '2', at: '' }, T0), s);
  assert.equal(applyReport(s, 'R3S-0004', { jobId: 'other', state: 'succeeded', version: '2', at: '' }, T0), s);
  const wide = widenCohort({ ...s, status: 'active', failThreshold: 100 }, parseCohort('100%'), T0);
  assert.equal(Object.values(wide.devices).filter((d) => d.inCohort).length, 20);
});

test('a rollout completes when every cohort device has finished', () => {
  let s = createRollout({
    rolloutId: 'r2',
    release: { version: '2.0.0', manifestSha256: 'x' },
    fleet: fleet.slice(0, 2),
    cohort: parseCohort('100%'),
    failThreshold: 1,
    maxParallel: 5,
    now: T0,
  });
  s = markSent(s, jobsToSend(s, T0), T0);
  s = report(s, 'R3S-0001', 'succeeded');
  assert.equal(s.status, 'active');
  s = report(s, 'R3S-0002', 'succeeded');
  assert.equal(s.status, 'completed');
});

test('maintenance windows are UTC and may span midnight', () => {
  const night = parseWindow('22:00-04:00');
  assert.equal(inWindow(night, new Date('2026-11-25T23:30:00Z')), true);
  assert.equal(inWindow(night, new Date('2026-11-25T03:59:00Z')), true);
  assert.equal(inWindow(night, new Date('2026-11-25T04:00:00Z')), false);
  assert.equal(inWindow(night, new Date('2026-11-25T12:00:00Z')), false);
  const day = parseWindow('09:00-17:00');
  assert.equal(inWindow(day, new Date('2026-11-25T09:00:00Z')), true);
  assert.equal(inWindow(undefined, T0), true);
  assert.throws(() => parseWindow('25:00-01:00'));
  assert.throws(() => parseWindow('10:00-10:00'));
  const s = createRollout({
    rolloutId: 'r3',
    release: { version: '2', manifestSha256: 'x' },
    fleet,
    cohort: parseCohort('100%'),
    failThreshold: 1,
    maxParallel: 5,
    window: night,
    now: T0,
  });
  assert.deepEqual(jobsToSend(s, T0), [], 'noon is outside 22:00-04:00');
  assert.equal(jobsToSend(s, new Date('2026-11-25T23:00:00Z')).length, 5);
});
