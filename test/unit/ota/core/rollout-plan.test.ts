// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hasCode } from '../../../../src/shared/errors.js';
import { parseReleaseManifest } from '../../../../src/shared/ota/manifest.js';
import { parseFleet, planRollout, rolloutExitCode, type RolloutRequest } from '../../../../src/ota/core/rollout-plan.js';
import type { RolloutState } from '../../../../src/ota/core/rollout-state.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const BYTES = Buffer.from(
  JSON.stringify({
    schema: 1,
    version: '2.0.0',
    board: 'friendlyarm,nanopi-r3s',
    compat: {},
    createdAt: NOW.toISOString(),
    artifacts: [{ kind: 'agent', name: 'a.bin', sha256: 'a'.repeat(64), size: 1, urls: ['https://x/a.bin'] }],
  }),
);

function request(o: Partial<RolloutRequest> = {}): RolloutRequest {
  return {
    manifestBytes: BYTES,
    manifest: parseReleaseManifest(BYTES),
    cohort: { kind: 'percent', percent: 50 },
    failThreshold: 1,
    maxParallel: 10,
    resumePaused: false,
    fleet: async () => ['S1', 'S2', 'S3', 'S4'],
    stateFile: 'state.json',
    now: NOW,
    ...o,
  };
}

test('a fleet list: commas or whitespace, #-entries skipped, duplicates once; a bad serial is a usage error', () => {
  assert.deepEqual(parseFleet('S1, S2\nS1 #note S3'), ['S1', 'S2', 'S3']);
  assert.throws(
    () => parseFleet('S1 bad/serial'),
    (e) => hasCode(e, 'CK_ERR_USAGE'),
  );
  assert.throws(
    () => parseFleet(' , #c '),
    (e) => hasCode(e, 'CK_ERR_USAGE'),
  );
});

test('a new rollout needs a failure threshold and names itself after the release', async () => {
  await assert.rejects(planRollout(undefined, request({ failThreshold: undefined })), (e) => hasCode(e, 'CK_ERR_USAGE'));
  const s = await planRollout(undefined, request({ window: '22:00-04:00' }));
  const sha = createHash('sha256').update(BYTES).digest('hex');
  assert.equal(s.rolloutId, `rel-2.0.0-${sha.slice(0, 8)}`);
  assert.equal(s.release.manifestSha256, sha);
  assert.deepEqual(s.window, { startMin: 22 * 60, endMin: 4 * 60 });
  assert.equal(Object.values(s.devices).filter((d) => d.inCohort).length, 2);
});

test('a rerun resumes the state file: the fleet is not read again, the cohort only widens, a pause lifts on request', async () => {
  const first = await planRollout(undefined, request());
  const paused: RolloutState = { ...first, status: 'paused', pauseReason: 'x' };
  const fleetNotRead = async (): Promise<string[]> => assert.fail('a resumed rollout keeps its fleet');
  const wider = await planRollout(
    paused,
    request({ cohort: { kind: 'percent', percent: 100 }, fleet: fleetNotRead, window: 'not a window' }),
  );
  assert.equal(Object.values(wider.devices).filter((d) => d.inCohort).length, 4);
  assert.equal(wider.status, 'paused');
  assert.equal((await planRollout(paused, request({ fleet: fleetNotRead, resumePaused: true }))).status, 'active');
});

test('a state file of another release is refused', async () => {
  const other = { ...(await planRollout(undefined, request())), release: { version: '1.0.0', manifestSha256: 'b'.repeat(64) } };
  await assert.rejects(planRollout(other, request()), (e) => hasCode(e, 'CK_ERR_OTA_STATE'));
});

test('exit codes: completed 0, paused 3, stopped while active 1', async () => {
  const s = await planRollout(undefined, request());
  assert.equal(rolloutExitCode({ ...s, status: 'completed' }), 0);
  assert.equal(rolloutExitCode({ ...s, status: 'paused' }), 3);
  assert.equal(rolloutExitCode({ ...s, status: 'active' }), 1);
});
