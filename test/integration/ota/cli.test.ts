// SPDX-License-Identifier: UNLICENSED
// The `connector release` and `connector ota` commands as a user runs them: keygen, manifest, sign,
// verify (and signify agrees), broker-config feeding a real mosquitto, serve with Range, rollout to three
// devices and status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseUsignPublicKey } from '../../../src/shared/usign/index.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { CONTROLLER_CN, freePort } from './helpers/mosquitto.js';
import { agentArtifact } from './helpers/release.js';
import { createTestDevice } from './helpers/device.js';
import { waitFor } from '../../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../../src/cli/connector.ts', import.meta.url));
const FLEET = ['R3S-0101', 'R3S-0102', 'R3S-0103'];

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cliAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('release keygen, manifest, sign, verify; signify verifies the result', (t) => {
  const dir = tempDir(t, 'ck-ota-cli-').dir;
  const k = cli(['release', 'keygen', '--out', join(dir, 'rel')]);
  assert.equal(k.code, 0, k.stderr);
  assert.equal(statSync(join(dir, 'rel.sec')).mode & 0o777, 0o600);
  assert.equal(cli(['release', 'keygen', '--out', join(dir, 'rel')]).code, 2, 'never overwrites a key');
  writeFileSync(join(dir, 'agent.mjs'), agentArtifact('2.0.0', true));
  const m = cli([
    'release',
    'manifest',
    '--version',
    '2.0.0',
    '--board',
    'friendlyarm,nanopi-r3s',
    '--artifact',
    `agent=${join(dir, 'agent.mjs')}=https://updates.example/agent.mjs`,
    '--min-version',
    '1.0.0',
    '--out',
    join(dir, 'm.json'),
  ]);
  assert.equal(m.code, 0, m.stderr);
  const s = cli(['release', 'sign', '--key', join(dir, 'rel.sec'), '--manifest', join(dir, 'm.json')]);
  assert.equal(s.code, 0, s.stderr);
  const v = cli(['release', 'verify', '--pub', join(dir, 'rel.pub'), '--manifest', join(dir, 'm.json')]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`signed by key ${parseUsignPublicKey(readFileSync(join(dir, 'rel.pub'), 'utf8')).keyId}`));
  const sig = spawnSync('signify-openbsd', ['-V', '-p', join(dir, 'rel.pub'), '-x', join(dir, 'm.json.sig'), '-m', join(dir, 'm.json')], {
    encoding: 'utf8',
  });
  assert.equal(sig.status, 0, sig.stderr);
  writeFileSync(join(dir, 'm.json'), readFileSync(join(dir, 'm.json'), 'utf8').replace('2.0.0', '2.0.1'));
  const bad = cli(['release', 'verify', '--pub', join(dir, 'rel.pub'), '--manifest', join(dir, 'm.json')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /CK_ERR_OTA_BAD_SIGNATURE/);
});

test('ota broker-config, serve, rollout and status drive three devices to the new version', async (t) => {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true, clients: [...FLEET, CONTROLLER_CN] });
  const dir = tempDir(t, 'ck-ota-cli-').dir;

  // Broker from the generated config (plus `user root` and a log file for the test host).
  const port = await freePort();
  const bc = cli([
    'ota',
    'broker-config',
    '--out',
    join(dir, 'broker'),
    '--cafile',
    pki.dcCa.file,
    '--certfile',
    pki.server.certFile,
    '--keyfile',
    pki.server.keyFile,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--controller',
    CONTROLLER_CN,
    '--user',
    'root',
  ]);
  assert.equal(bc.code, 0, bc.stderr);
  const conf = readFileSync(join(dir, 'broker', 'mosquitto.conf'), 'utf8');
  for (const line of [
    'require_certificate true',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    'tls_version tlsv1.3',
    'allow_anonymous false',
    'per_listener_settings false',
  ])
    assert.ok(conf.includes(line), line);
  const mosq = spawn('mosquitto', ['-c', join(dir, 'broker', 'mosquitto.conf')], { stdio: 'ignore' });
  t.after(() => void mosq.kill('SIGKILL'));

  // Artifact server via the CLI.
  const artifacts = join(dir, 'artifacts');
  const httpsPort = await freePort();
  spawnSync('mkdir', ['-p', artifacts]);
  writeFileSync(join(artifacts, 'connector-agent-2.0.0.mjs'), agentArtifact('2.0.0', true, 50_000));
  const srv = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'ota',
      'serve',
      '--dir',
      artifacts,
      '--cert',
      pki.server.certFile,
      '--key',
      pki.server.keyFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(httpsPort),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => void srv.kill('SIGTERM'));
  await new Promise<void>((r) => srv.stdout.once('data', () => r()));
  const base = `https://127.0.0.1:${httpsPort}`;
  const curl = spawnSync(
    'curl',
    [
      '-s',
      '--cacert',
      pki.dcCa.file,
      '-r',
      '100-199',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download}',
      `${base}/connector-agent-2.0.0.mjs`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(curl.stdout, '206 100');

  assert.equal(cli(['release', 'keygen', '--out', join(dir, 'k')]).code, 0);
  assert.equal(
    cli([
      'release',
      'manifest',
      '--version',
      '2.0.0',
      '--board',
      'friendlyarm,nanopi-r3s',
      '--artifact',
      `agent=${join(artifacts, 'connector-agent-2.0.0.mjs')}=${base}/connector-agent-2.0.0.mjs`,
      '--out',
      join(dir, 'm.json'),
    ]).code,
    0,
  );
  assert.equal(cli(['release', 'sign', '--key', join(dir, 'k.sec'), '--manifest', join(dir, 'm.json')]).code, 0);

  const key = parseUsignPublicKey(readFileSync(join(dir, 'k.pub'), 'utf8'));
  const url = `mqtts://127.0.0.1:${port}`;
  const devices = await Promise.all(
    FLEET.map((serial) => createTestDevice(t, { serial, keys: [key], artifactCa: pki.dcCa.pem, pki, brokerUrl: url })),
  );

  const ctl = pki.identity(CONTROLLER_CN);
  const state = join(dir, 'rollout.json');
  const r = await cliAsync([
    'ota',
    'rollout',
    '--release',
    join(dir, 'm.json'),
    '--pub',
    join(dir, 'k.pub'),
    '--devices',
    FLEET.join(','),
    '--cohort',
    '100%',
    '--fail-threshold',
    '1',
    '--state',
    state,
    '--broker',
    url,
    '--ca',
    pki.dcCa.file,
    '--cert',
    ctl.certFile,
    '--key',
    ctl.keyFile,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const d of devices) assert.equal(await d.updater.runningVersion(), '2.0.0');
  const st = cli(['ota', 'status', '--state', state]);
  assert.equal(st.code, 0);
  assert.match(st.stdout, /completed/);
  for (const serial of FLEET) assert.match(st.stdout, new RegExp(`${serial}\\s+succeeded\\s+2\\.0\\.0`));

  // The same rollout under the controller service: it finds the state file, offers the signed release,
  // answers on its API, refuses what is wrong, and stops on SIGTERM.
  assert.match(cli(['ota', 'controller', '--dir', dir]).stderr, /--releases/, 'a missing option is named');
  const rollouts = join(dir, 'rollouts');
  spawnSync('mkdir', ['-p', rollouts]);
  writeFileSync(join(rollouts, 'rollout.json'), readFileSync(state));
  const apiPort = await freePort();
  const ctlArgs = ['ota', 'controller', '--dir', rollouts, '--releases', dir, '--pub', join(dir, 'k.pub'), '--devices', FLEET.join(',')];
  const auth = ['--broker', url, '--ca', pki.dcCa.file, '--cert', ctl.certFile, '--key', ctl.keyFile, '--port', String(apiPort)];
  const noKey = cli(['ota', 'controller', '--dir', rollouts, '--releases', dir, '--devices', FLEET.join(','), ...auth]);
  assert.equal(noKey.code, 2, 'no trusted key: refused before anything starts');
  assert.match(noKey.stderr, /--pub KEY\.pub is required/);
  const svc = spawn(process.execPath, ['--import', 'tsx', CLI, ...ctlArgs, ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => svc.once('exit', (code) => r(code)));
  t.after(() => void svc.kill('SIGKILL'));
  const api = `http://127.0.0.1:${apiPort}`;
  const releases = await waitFor('the controller API', 30_000, () =>
    fetch(`${api}/v1/releases`).then(
      (r) => r.json() as Promise<{ releases: { name: string; version: string }[] }>,
      () => undefined,
    ),
  );
  assert.deepEqual(
    releases.releases.map((r) => `${r.name} ${r.version}`),
    ['m.json 2.0.0'],
  );
  const list = (await (await fetch(`${api}/v1/rollouts`)).json()) as { rollouts: { rolloutId: string; status: string }[] };
  assert.deepEqual(
    list.rollouts.map((r) => r.status),
    ['completed'],
    'the rollout of the command, from its state file',
  );
  const id = list.rollouts[0]?.rolloutId ?? '';
  const pause = await fetch(`${api}/v1/rollouts/${id}/pause`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(pause.status, 409);
  const again = await fetch(`${api}/v1/rollouts`, {
    method: 'POST',
    body: JSON.stringify({ release: 'm.json', cohort: '100%', failThreshold: 1, rolloutId: id }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(again.status, 409, 'the same rollout id twice');
  svc.kill('SIGTERM');
  assert.equal(await exited, 0, 'SIGTERM stops it cleanly');
});
