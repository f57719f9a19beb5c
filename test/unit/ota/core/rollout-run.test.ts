// SPDX-License-Identifier: UNLICENSED
// The rollout loop over an in-memory channel and store: jobs go out to the cohort within the parallel
// limit, reports fold in, a job that fails to publish goes back to pending, every change is persisted,
// and the loop stops when the rollout settles. No broker, no files, no timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../../src/shared/log.js';
import { jobStateReportTopic, jobStateTopic, parseJobTopic, type JobState } from '../../../../src/shared/ota/protocol.js';
import { createRollout, type RolloutState } from '../../../../src/ota/core/rollout-state.js';
import { runRolloutLoop, type RolloutChannel } from '../../../../src/ota/core/rollout-run.js';

const T0 = new Date('2026-04-01T10:00:00Z');

function memoryChannel(answer: (serial: string) => JobState | 'publish-fails') {
  let onReport: ((topic: string, payload: Buffer) => void) | undefined;
  const published: string[] = [];
  const channel: RolloutChannel = {
    async subscribeReports(fn) {
      onReport = fn;
    },
    async unsubscribeReports() {
      onReport = undefined;
    },
    async publishJob(topic) {
      const t = parseJobTopic(topic);
      assert.ok(t && !t.state);
      const a = answer(t.serial);
      if (a === 'publish-fails') throw new Error('broker gone');
      published.push(t.serial);
      // The device answers at once, before the publish resolves: the loop must already count it as sent.
      // A mixed fleet: serials ending in an even digit run an older agent that reports per job.
      onReport?.(
        /[02468]$/.test(t.serial) ? jobStateTopic(t.serial, t.jobId) : jobStateReportTopic(t.serial),
        Buffer.from(JSON.stringify({ jobId: t.jobId, state: a, version: '2.0.0', at: T0.toISOString() })),
      );
    },
  };
  return { channel, published, subscribed: () => onReport !== undefined };
}

function rollout(fleet: string[], maxParallel = 10, failThreshold = 1): RolloutState {
  return createRollout({
    rolloutId: 'r1',
    release: { version: '2.0.0', manifestSha256: 'ab'.repeat(32) },
    fleet,
    cohort: { kind: 'percent', percent: 100 },
    failThreshold,
    maxParallel,
    now: T0,
  });
}

/** Runs the loop until it settles, or stops it (like SIGTERM) after `maxRounds` rounds. */
async function run(initial: RolloutState, answer: (serial: string) => JobState | 'publish-fails', maxRounds = 20) {
  const mem = memoryChannel(answer);
  const saved: RolloutState[] = [];
  const abort = new AbortController();
  let rounds = 0;
  const end = await runRolloutLoop({
    channel: mem.channel,
    store: { save: async (s) => void saved.push(s) },
    initial,
    manifest: Buffer.from('{}'),
    signature: 'sig',
    log: silentLogger,
    now: () => T0,
    wait: async () => {
      if (++rounds >= maxRounds) abort.abort();
    },
    untilSettled: true,
    signal: abort.signal,
  });
  return { end, saved, rounds, ...mem };
}

test('every cohort device gets its job; the rollout completes and the last state is saved', async () => {
  const r = await run(rollout(['S1', 'S2', 'S3']), () => 'succeeded');
  assert.equal(r.end.status, 'completed');
  assert.deepEqual([...r.published].sort(), ['S1', 'S2', 'S3']);
  assert.deepEqual(r.saved.at(-1), r.end);
  assert.equal(r.subscribed(), false, 'reports are unsubscribed at the end');
});

test('no more than maxParallel jobs are in flight at once; a stop signal ends the loop with the state saved', async () => {
  const r = await run(rollout(['S1', 'S2', 'S3'], 1), () => 'downloading', 3);
  assert.deepEqual(r.published, ['S1'], 'one device in flight, the others wait');
  assert.equal(r.end.status, 'active');
  assert.equal(r.saved.at(-1)?.devices['S1']?.state, 'downloading');
});

test('a failed device pauses the rollout at the threshold', async () => {
  const r = await run(rollout(['S1', 'S2'], 10, 1), (s) => (s === 'S1' ? 'failed' : 'succeeded'));
  assert.equal(r.end.status, 'paused');
  assert.equal(r.end.devices['S1']?.state, 'failed');
});

test('a job that cannot be published goes back to pending and is retried next round', async () => {
  let fails = 1;
  const r = await run(rollout(['S1']), () => (fails-- > 0 ? 'publish-fails' : 'succeeded'));
  assert.equal(r.end.status, 'completed');
  assert.ok(r.rounds >= 1, 'a second round was needed');
  assert.ok(
    r.saved.some((s) => s.devices['S1']?.state === 'pending'),
    'the reverted state was persisted',
  );
});
