// SPDX-License-Identifier: UNLICENSED
// The rollout controller as a service, end to end over a real mosquitto (mutual TLS 1.3) and the HTTPS
// artifact server, steered only through its HTTP API as the console does: a release whose signature does
// not verify is never offered, a rollout starts on a cohort, a second one is refused while it runs, a widened
// rollout is paused (no new job while paused, the job in flight finishes) and resumed to the whole fleet,
// and a restarted controller finds the rollout where its file left it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../src/shared/log.js';
import { generateUsignKeyPair } from '../../../src/shared/usign/index.js';
import { serveRolloutApi } from '../../../src/ota/adapters/rollout-http-api.js';
import { connectController, sharedRolloutChannels } from '../../../src/ota/adapters/rollout-mqtt.js';
import { startRolloutService } from '../../../src/ota/adapters/rollout-service.js';
import type { RolloutState } from '../../../src/ota/core/rollout-state.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { CONTROLLER_CN, startMosquitto } from './helpers/mosquitto.js';
import { agentArtifact, buildRelease, serveTestArtifacts } from './helpers/release.js';
import { createTestDevice, FIRST_VERSION } from './helpers/device.js';

const FLEET = ['R3S-0001', 'R3S-0002', 'R3S-0003'];

test('the rollout controller service starts, refuses, pauses, resumes and survives a restart through its API', async (t) => {
  const pki = await createTestPki(tempDir(t, 'ck-ctl-pki-').dir, { singleCa: true, clients: [...FLEET, CONTROLLER_CN] });
  const broker = await startMosquitto(t, pki);
  const work = tempDir(t, 'ck-ctl-').dir;
  const artifacts = join(work, 'artifacts');
  const releasesDir = join(work, 'releases');
  const rolloutsDir = join(work, 'rollouts');
  for (const d of [artifacts, releasesDir, rolloutsDir]) mkdirSync(d);
  const server = await serveTestArtifacts(t, pki, artifacts);
  const key = generateUsignKeyPair();
  const stranger = generateUsignKeyPair();
  const publish = (version: string, signer = key) => {
    const rel = buildRelease({
      dir: artifacts,
      baseUrl: server.url,
      version,
      key: signer.secretKey,
      content: agentArtifact(version, true),
    });
    writeFileSync(join(releasesDir, `connector-${version}.json`), rel.manifestBytes);
    writeFileSync(join(releasesDir, `connector-${version}.json.sig`), rel.signature);
  };
  publish('1.1.0');
  publish('1.2.0');
  publish('6.6.6', stranger);
  const devices = await Promise.all(
    FLEET.map((serial) => createTestDevice(t, { serial, keys: [key.publicKey], artifactCa: pki.dcCa.pem, pki, brokerUrl: broker.url })),
  );
  const ctl = pki.identity(CONTROLLER_CN);
  const client = await connectController({ url: broker.url, ca: pki.dcCa.pem, cert: ctl.cert, key: ctl.key }, CONTROLLER_CN);
  t.after(() => client.endAsync());

  const start = async () => {
    const service = await startRolloutService({
      dir: rolloutsDir,
      releasesDir,
      keys: [key.publicKey],
      fleet: async () => FLEET,
      channel: sharedRolloutChannels(client),
      log: silentLogger,
      tickMs: 50,
    });
    const api = await serveRolloutApi({ host: '127.0.0.1', port: 0, ops: service.ops, log: silentLogger });
    return { service, api, url: `http://127.0.0.1:${api.address.port}` };
  };
  let ctlr = await start();
  t.after(async () => {
    await ctlr.api.close();
    await ctlr.service.close();
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(ctlr.url + path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const stateOf = async (id: string) => (await call('GET', `/v1/rollouts/${id}`)).body as unknown as RolloutState;
  const until = async (what: string, id: string, ok: (s: RolloutState) => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const s = await stateOf(id);
      if (ok(s)) return s;
      if (Date.now() > end) assert.fail(`${what}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // Only what verifies under the trusted key is offered, or can be started.
  const releases = (await call('GET', '/v1/releases')).body['releases'] as { version: string }[];
  assert.deepEqual(
    releases.map((r) => r.version),
    ['1.1.0', '1.2.0'],
  );
  const forged = await call('POST', '/v1/rollouts', { release: '6.6.6', cohort: '100%', failThreshold: 1 });
  assert.equal(forged.status, 404);
  assert.match(String(forged.body['message']), /no release 6\.6\.6 among the signed releases/);

  // One unit first; a second rollout is refused while this one sends jobs.
  const started = await call('POST', '/v1/rollouts', {
    release: '1.1.0',
    cohort: '34%',
    failThreshold: 1,
    maxParallel: 1,
    rolloutId: 'r-110',
    by: 'alice',
  });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const other = await call('POST', '/v1/rollouts', { release: '1.2.0', cohort: '100%', failThreshold: 1 });
  assert.equal(other.status, 409);
  assert.match(String(other.body['message']), /rollout r-110 is active/);
  const first = await until('the first cohort done', 'r-110', (s) => s.status === 'completed');
  const cohort = FLEET.filter((s) => first.devices[s]?.inCohort);
  assert.equal(cohort.length, 1);
  assert.equal(await devices.find((d) => d.serial === cohort[0])?.updater.runningVersion(), '1.1.0');

  // Widened to the fleet and paused at once: one job may already be out (it finishes), no further one.
  assert.equal((await call('POST', '/v1/rollouts/r-110/widen', { cohort: '100%', by: 'alice' })).status, 200);
  const paused = await call('POST', '/v1/rollouts/r-110/pause', { by: 'bob' });
  assert.equal(paused.status, 200);
  assert.equal(paused.body['status'], 'paused');
  assert.match(String(paused.body['pauseReason']), /^paused by bob at /);
  const settled = await until('the job in flight settles', 'r-110', (s) =>
    Object.values(s.devices).every((d) => d.state === 'pending' || d.state === 'succeeded'),
  );
  await new Promise((r) => setTimeout(r, 1_000));
  const still = await stateOf('r-110');
  const pending = FLEET.filter((s) => still.devices[s]?.state === 'pending');
  assert.ok(pending.length >= 1, `a unit is still waiting while paused: ${JSON.stringify(still.devices)}`);
  assert.deepEqual(still.devices, settled.devices, 'nothing was sent while paused');
  for (const serial of pending) assert.equal(await devices.find((d) => d.serial === serial)?.updater.runningVersion(), FIRST_VERSION);
  assert.equal((await call('POST', '/v1/rollouts/r-110/pause', {})).body['status'], 'paused', 'pausing twice is harmless');

  // The controller restarts while paused: the file brings the rollout back, still paused.
  await ctlr.api.close();
  await ctlr.service.close();
  ctlr = await start();
  const back = await stateOf('r-110');
  assert.equal(back.status, 'paused');
  const resumed = await call('POST', '/v1/rollouts/r-110/resume', { by: 'alice' });
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body['status'], 'active');
  await until('the whole fleet done', 'r-110', (s) => s.status === 'completed');
  for (const d of devices) assert.equal(await d.updater.runningVersion(), '1.1.0', d.serial);
  const done = await call('POST', '/v1/rollouts/r-110/pause', {});
  assert.equal(done.status, 409);
  assert.match(String(done.body['message']), /has completed/);
  assert.equal((await call('POST', '/v1/rollouts/nope/pause', {})).status, 404);

  // The second release can go now; the list holds both, newest first.
  assert.equal(
    (await call('POST', '/v1/rollouts', { release: 'connector-1.2.0.json', cohort: '34%', failThreshold: 1, rolloutId: 'r-120' })).status,
    201,
  );
  const list = (await call('GET', '/v1/rollouts')).body['rollouts'] as RolloutState[];
  assert.deepEqual(
    list.map((r) => r.rolloutId),
    ['r-120', 'r-110'],
  );
  assert.equal(JSON.parse(readFileSync(join(rolloutsDir, 'r-120.json'), 'utf8')).rolloutId, 'r-120');
});
