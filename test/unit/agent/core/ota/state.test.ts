// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HISTORY_MAX, INITIAL, parsePersisted, progressBucket, withHistory } from '../../../../../src/agent/core/ota/state.js';

test('history keeps the newest entries, one per job, and returns to idle', () => {
  let p = INITIAL;
  for (let i = 0; i < HISTORY_MAX + 5; i++) p = withHistory(p, { jobId: `j${i}`, state: 'succeeded', version: '1', at: '' });
  p = withHistory(p, { jobId: `j${HISTORY_MAX + 4}`, state: 'rolled-back', version: '1', at: '' });
  assert.equal(p.history.length, HISTORY_MAX);
  assert.equal(p.history.at(-1)?.state, 'rolled-back');
  assert.equal(p.history.filter((h) => h.jobId === `j${HISTORY_MAX + 4}`).length, 1);
  assert.equal(p.state.phase, 'idle');
});

test('a corrupt or foreign state file is treated as absent, and progress is bucketed', () => {
  assert.equal(parsePersisted('{'), undefined);
  assert.equal(parsePersisted('{"v":2}'), undefined);
  assert.deepEqual(parsePersisted(JSON.stringify(INITIAL)), INITIAL);
  assert.equal(progressBucket(0, 100), 0);
  assert.equal(progressBucket(55, 100), 5);
  assert.equal(progressBucket(100, 100), 10);
});
