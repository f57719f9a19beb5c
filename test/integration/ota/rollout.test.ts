// SPDX-License-Identifier: UNLICENSED
// End to end over a real mosquitto (mutual TLS 1.3, generated config and ACLs) and the HTTPS artifact
// server: the rollout controller moves a cohort of three device updaters to a new agent, and a release
// whose health check fails rolls back on each device and pauses the rollout at the threshold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { silentLogger } from '../../../src/shared/log.js';
import { generateUsignKeyPair } from '../../../src/shared/usign/index.js';
import { runRollout } from '../../../src/ota/main.js';
import { connectController } from '../../../src/ota/adapters/rollout-mqtt.js';
import { loadRolloutState } from '../../../src/ota/adapters/files.js';
import { createRollout, formatStatus, parseCohort, widenCohort } from '../../../src/ota/core/rollout-state.js';
import { ALL_STATUS_FILTER, type DeviceStatus } from '../../../src/shared/ota/protocol.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { CONTROLLER_CN, startMosquitto } from './helpers/mosquitto.js';
import { agentArtifact, buildRelease, serveTestArtifacts } from './helpers/release.js';
import { createTestDevice, FIRST_VERSION } from './helpers/device.js';

const FLEET = ['R3S-0001', 'R3S-0002', 'R3S-0003'];

async function setup(t: { after(fn: () => void | Promise<void>): void }) {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true, clients: [...FLEET, CONTROLLER_CN] });
  const broker = await startMosquitto(t, pki);
  const artifactsDir = tempDir(t, 'ck-ota-art-').dir;
  const server = await serveTestArtifacts(t, pki, artifactsDir);
  const key = generateUsignKeyPair();
  const devices = await Promise.all(
    FLEET.map((serial) => createTestDevice(t, { serial, keys: [key.publicKey], artifactCa: pki.dcCa.pem, pki, brokerUrl: broker.url })),
  );
  const ctl = pki.identity(CONTROLLER_CN);
  const client = await connectController({ url: broker.url, ca: pki.dcCa.pem, cert: ctl.cert, key: ctl.key }, CONTROLLER_CN);
  t.after(() => client.endAsync());
  const stateFile = join(artifactsDir, 'rollout-state.json');
  return { pki, broker, artifactsDir, server, key, devices, client, stateFile };
}

test('a rollout moves its cohort to the new agent, survives a controller restart, and widens to the fleet', async (t) => {
  const env = await setup(t);
  const rel = buildRelease({
    dir: env.artifactsDir,
    baseUrl: env.server.url,
    version: '1.1.0',
    key: env.key.secretKey,
    content: agentArtifact('1.1.0', true),
  });
  const now = () => new Date();
  const first = createRollout({
    rolloutId: 'r-1.1.0',
    release: { version: '1.1.0', manifestSha256: 'x' },
    fleet: FLEET,
    cohort: parseCohort('67%'),
    failThreshold: 1,
    maxParallel: 10,
    now: now(),
  });
  const cohort = FLEET.filter((s) => first.devices[s]?.inCohort);
  assert.equal(cohort.length, 2);
  const s1 = await runRollout({
    client: env.client,
    stateFile: env.stateFile,
    initial: first,
    manifest: rel.manifestBytes,
    signature: rel.signature,
    log: silentLogger,
    untilSettled: true,
    tickMs: 50,
  });
  assert.equal(s1.status, 'completed', formatStatus(s1));
  for (const d of env.devices) {
    const expected = cohort.includes(d.serial) ? '1.1.0' : FIRST_VERSION;
    assert.equal(await d.updater.runningVersion(), expected, d.serial);
    assert.equal(s1.devices[d.serial]?.state, cohort.includes(d.serial) ? 'succeeded' : 'pending');
  }

  // A new controller process: state comes back from the file, the cohort widens, the rest follows.
  const loaded = await loadRolloutState(env.stateFile);
  assert.ok(loaded);
  assert.equal(loaded.status, 'completed');
  const widened = widenCohort(loaded, parseCohort('100%'), now());
  const s2 = await runRollout({
    client: env.client,
    stateFile: env.stateFile,
    initial: widened,
    manifest: rel.manifestBytes,
    signature: rel.signature,
    log: silentLogger,
    untilSettled: true,
    tickMs: 50,
  });
  assert.equal(s2.status, 'completed', formatStatus(s2));
  for (const d of env.devices) {
    assert.equal(await d.updater.runningVersion(), '1.1.0');
    assert.equal(s2.devices[d.serial]?.version, '1.1.0');
    const states = d.reports.map((r) => r.state);
    for (const st of ['downloading', 'verifying', 'installing', 'switching', 'health-check', 'succeeded'] as const)
      assert.ok(states.includes(st), `${d.serial} reported ${st}`);
  }
  const table = formatStatus(s2);
  assert.match(table, /completed/);
  assert.match(table, /R3S-0003\s+succeeded\s+1\.1\.0/);

  // The retained status of every device shows the new version to anyone allowed to read it.
  const seen = new Map<string, DeviceStatus>();
  const onMsg = (topic: string, payload: Buffer) => {
    const serial = topic.split('/')[2];
    if (serial) seen.set(serial, JSON.parse(payload.toString()) as DeviceStatus);
  };
  env.client.on('message', onMsg);
  await env.client.subscribeAsync(ALL_STATUS_FILTER, { qos: 1 });
  const until = Date.now() + 3000;
  while (seen.size < FLEET.length && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  env.client.removeListener('message', onMsg);
  for (const serial of FLEET) assert.equal(seen.get(serial)?.version, '1.1.0', serial);
});

test('a release that fails its health check rolls back on each device and pauses the rollout at the threshold', async (t) => {
  const env = await setup(t);
  const rel = buildRelease({
    dir: env.artifactsDir,
    baseUrl: env.server.url,
    version: '1.2.0',
    key: env.key.secretKey,
    content: agentArtifact('1.2.0', false),
  });
  const initial = createRollout({
    rolloutId: 'r-1.2.0',
    release: { version: '1.2.0', manifestSha256: 'x' },
    fleet: FLEET,
    cohort: parseCohort('100%'),
    failThreshold: 2,
    maxParallel: 1,
    now: new Date(),
  });
  const s = await runRollout({
    client: env.client,
    stateFile: env.stateFile,
    initial,
    manifest: rel.manifestBytes,
    signature: rel.signature,
    log: silentLogger,
    untilSettled: true,
    tickMs: 50,
  });
  assert.equal(s.status, 'paused', formatStatus(s));
  const states = FLEET.map((serial) => s.devices[serial]?.state);
  assert.deepEqual(states.filter((x) => x === 'rolled-back').length, 2);
  assert.deepEqual(states.filter((x) => x === 'pending').length, 1, 'the third device never got the job');
  for (const d of env.devices) {
    assert.equal(await d.updater.runningVersion(), FIRST_VERSION, `${d.serial} is back on the good version`);
    if (d.reports.length > 0) {
      assert.equal(d.reports.at(-1)?.state, 'rolled-back');
      assert.equal(d.reports.at(-1)?.reason, 'health-check-failed');
      assert.deepEqual(d.restarts, ['switched', 'rolled-back']);
    }
  }
  const persisted = await loadRolloutState(env.stateFile);
  assert.equal(persisted?.status, 'paused');
});
