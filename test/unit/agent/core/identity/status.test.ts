// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdentityStatusTracker } from '../../../../../src/agent/core/identity/status.js';

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
