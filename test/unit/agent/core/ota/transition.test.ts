// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HEALTH_ATTEMPTS, transition, type ActiveJob, type UpdaterState } from '../../../../../src/agent/core/ota/state.js';

const job = (kind: 'agent' | 'sysupgrade'): ActiveJob => ({
  jobId: 'j',
  rolloutId: 'r',
  version: '2.0.0',
  fromVersion: '1.0.0',
  manifest: '',
  artifact: { kind, name: 'a', sha256: '0'.repeat(64), size: 1, urls: ['https://x/a'] },
});
const agent = job('agent');
const next = (s: UpdaterState, o: Parameters<typeof transition>[1]) => {
  const t = transition(s, o);
  assert.ok('next' in t, `expected a next phase, got ${JSON.stringify(t)}`);
  return t.next;
};

test('the happy A/B path walks the phases in order, installing into the other slot', () => {
  let s: UpdaterState = { phase: 'downloading', job: agent };
  s = next(s, { kind: 'downloaded' });
  assert.equal(s.phase, 'verifying');
  s = next(s, { kind: 'hash-ok', currentSlot: 'b' });
  assert.deepEqual([s.phase, 'from' in s && s.from, 'to' in s && s.to], ['installing', 'b', 'a']);
  s = next(s, { kind: 'installed' });
  assert.equal(s.phase, 'switching');
  s = next(s, { kind: 'switched' });
  assert.deepEqual(s.phase === 'health-check' && s.attempts, 0);
  s = next(s, { kind: 'health-start' });
  assert.deepEqual(transition(s, { kind: 'healthy' }), { done: 'succeeded' });
});

test('failures end the job with a reason; an unhealthy release or exhausted attempts roll back', () => {
  assert.deepEqual(transition({ phase: 'downloading', job: agent }, { kind: 'download-failed', detail: 'x' }), {
    done: 'failed',
    reason: 'download-failed',
    detail: 'x',
  });
  assert.deepEqual(transition({ phase: 'verifying', job: agent }, { kind: 'hash-mismatch', detail: 'd' }), {
    done: 'rejected',
    reason: 'artifact-mismatch',
    detail: 'd',
  });
  const hc: UpdaterState = { phase: 'health-check', job: agent, from: 'a', to: 'b', attempts: 1 };
  assert.equal(next(hc, { kind: 'unhealthy', detail: 'late' }).phase, 'rolling-back');
  const exhausted = next({ ...hc, attempts: MAX_HEALTH_ATTEMPTS }, { kind: 'health-start' });
  assert.equal(exhausted.phase, 'rolling-back');
  assert.deepEqual(transition(exhausted, { kind: 'switched-back' }), {
    done: 'rolled-back',
    reason: 'health-check-failed',
    detail: `no healthy start in ${MAX_HEALTH_ATTEMPTS} attempts`,
  });
});

test('an OS image goes dry run, then flash, then reports success once booted', () => {
  const os = job('sysupgrade');
  let s = next({ phase: 'verifying', job: os }, { kind: 'hash-ok', currentSlot: 'a' });
  assert.equal(s.phase, 'os-upgrading');
  assert.deepEqual(transition(s, { kind: 'dry-run-exit', code: 1 }), {
    done: 'failed',
    reason: 'sysupgrade-failed',
    detail: 'sysupgrade -T exited 1',
  });
  s = next(s, { kind: 'dry-run-exit', code: 0 });
  assert.equal(s.phase, 'os-rebooting');
  assert.deepEqual(transition(s, { kind: 'booted' }), { done: 'succeeded' });
});

test('an outcome from another phase is a programming error', () => {
  assert.throws(() => transition({ phase: 'downloading', job: agent }, { kind: 'healthy' }), /not valid in phase "downloading"/);
  assert.throws(() => transition({ phase: 'idle' }, { kind: 'downloaded' }));
});
