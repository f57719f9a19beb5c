// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pauseRollout, resumeRollout, widenRollout } from '../../../../src/ota/core/rollout-control.js';
import {
  applyReport,
  createRollout,
  jobsToSend,
  markSent,
  parseCohort,
  type RolloutState,
} from '../../../../src/ota/core/rollout-state.js';
import { routeRolloutApi, type RolloutOps } from '../../../../src/ota/core/rollout-api.js';
import { ConnectorError } from '../../../../src/shared/errors.js';

const T0 = new Date('2026-12-05T10:00:00Z');
const FLEET = ['R3S-0001', 'R3S-0002', 'R3S-0003', 'R3S-0004'];

function rollout(id: string, threshold = 1): RolloutState {
  return createRollout({
    rolloutId: id,
    release: { version: '1.1.0', manifestSha256: 'ab' },
    fleet: FLEET,
    cohort: parseCohort('100%'),
    failThreshold: threshold,
    maxParallel: 10,
    now: T0,
  });
}

function failOne(s: RolloutState, serial: string): RolloutState {
  return applyReport(
    markSent(s, [serial], T0),
    serial,
    { jobId: s.rolloutId, state: 'failed', version: '1.0.0', reason: 'download-failed', at: T0.toISOString() } as never,
    T0,
  );
}

test('a paused rollout sends no job until it is resumed, and says who paused it', () => {
  const s = pauseRollout(rollout('r1'), 'alice', T0);
  assert.equal(s.status, 'paused');
  assert.match(s.pauseReason ?? '', /^paused by alice at 2026-12-05T10:00:00/);
  assert.deepEqual(jobsToSend(s, T0), []);
  const r = resumeRollout(s, [s], false);
  assert.equal(r.status, 'active');
  assert.equal(r.pauseReason, undefined);
  assert.equal(jobsToSend(r, T0).length, 4);
});

test('a completed rollout cannot be paused or resumed, only widened', () => {
  const done = { ...rollout('r1'), status: 'completed' as const };
  assert.throws(() => pauseRollout(done, 'alice', T0), /has completed/);
  assert.throws(() => resumeRollout(done, [], false), /widen its cohort/);
});

test('at most one rollout is active: resuming or widening another is refused while one sends jobs', () => {
  const active = rollout('r-active');
  const paused = pauseRollout(rollout('r-paused'), 'bob', T0);
  assert.throws(() => resumeRollout(paused, [active, paused], false), /rollout r-active is active/);
  const narrow = createRollout({
    ...rollout('r-done'),
    fleet: FLEET,
    cohort: parseCohort('25%'),
    failThreshold: 1,
    maxParallel: 1,
    now: T0,
    release: { version: '1', manifestSha256: 'x' },
  });
  const completed = {
    ...narrow,
    status: 'completed' as const,
    devices: Object.fromEntries(
      Object.entries(narrow.devices).map(([k, d]) => [k, d.inCohort ? { ...d, state: 'succeeded' as const } : d]),
    ),
  };
  assert.throws(() => widenRollout(completed, parseCohort('100%'), [active, completed], T0), /rollout r-active is active/);
  assert.equal(widenRollout(completed, parseCohort('100%'), [completed], T0).status, 'active');
});

test('a rollout paused at its failure threshold is resumed only when the operator accepts the failures', () => {
  const s = failOne(rollout('r1', 1), 'R3S-0001');
  assert.equal(s.status, 'paused');
  assert.throws(() => resumeRollout(s, [s], false), /failure threshold .*acceptFailures/);
  const r = resumeRollout(s, [s], true);
  assert.equal(r.status, 'active');
  assert.equal(r.failThreshold, 2, 'the threshold counts again from the accepted failures');
  // One more failure pauses it again.
  assert.equal(failOne(r, 'R3S-0002').status, 'paused');
});

test('the rollout API refuses malformed requests with a 4xx that says what was wrong', async () => {
  const calls: string[] = [];
  const ops = {
    releases: async () => [],
    list: async () => ({ rollouts: [], problems: [] }),
    get: (id: string) => Promise.reject(new ConnectorError('CK_ERR_USAGE', `no rollout ${id}`)),
    start: async (r: unknown) => (calls.push(JSON.stringify(r)), rollout('x')),
    pause: async (id: string, by: string) => (calls.push(`pause ${id} ${by}`), rollout(id)),
    resume: async (id: string, by: string, a: boolean) => (calls.push(`resume ${id} ${by} ${a}`), rollout(id)),
    widen: async () => rollout('x'),
  } as unknown as RolloutOps;
  const bad = async (method: string, path: string, body: unknown, status: number, message: RegExp) => {
    const r = await routeRolloutApi(ops, method, path, body);
    assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}`);
    assert.match(String((r.body as { message?: string }).message ?? (r.body as { error: string }).error), message);
  };
  await bad('POST', '/v1/rollouts', { release: '1.1.0', cohort: '10%' }, 400, /failThreshold must be an integer/);
  await bad('POST', '/v1/rollouts', { release: '1.1.0', cohort: '10%', failThreshold: 1, extra: 1 }, 400, /unknown field "extra"/);
  await bad('POST', '/v1/rollouts', { release: '1.1.0', cohort: '250%', failThreshold: 1 }, 400, /percent must be in/);
  await bad('POST', '/v1/rollouts', { release: '1.1.0', cohort: '10%', failThreshold: 1, window: '25:00-01:00' }, 400, /HH:MM-HH:MM/);
  await bad('POST', '/v1/rollouts', [1], 400, /JSON object/);
  await bad('POST', '/v1/rollouts/r1/resume', { acceptFailures: 'yes' }, 400, /acceptFailures must be a boolean/);
  await bad('GET', '/v1/rollouts/nope', undefined, 404, /no rollout nope/);
  await bad('DELETE', '/v1/rollouts/r1', undefined, 405, /method-not-allowed|no DELETE/);
  assert.deepEqual(calls, [], 'nothing reached the operations');
  const ok = await routeRolloutApi(ops, 'POST', '/v1/rollouts', { release: '1.1.0', cohort: '10%', failThreshold: 2, by: 'alice' });
  assert.equal(ok.status, 201);
  assert.deepEqual(JSON.parse(calls[0] ?? ''), {
    release: '1.1.0',
    cohort: { kind: 'percent', percent: 10 },
    failThreshold: 2,
    maxParallel: 10,
    by: 'alice',
  });
  await routeRolloutApi(ops, 'POST', '/v1/rollouts/r1/resume', { by: 'bob', acceptFailures: true });
  assert.equal(calls[1], 'resume r1 bob true');
});
