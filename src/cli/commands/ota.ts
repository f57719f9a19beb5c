// SPDX-License-Identifier: UNLICENSED
// `connector ota broker-config|serve|rollout|status`: the datacentre side of over-the-air updates
// (docs/ota.md).
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { flag, parseCommandArgs, requireStr, str, runSubcommand, type Parsed } from '../../shared/cli/args.js';
import { ConnectorError, UsageError } from '../../shared/errors.js';
import { loggerFromEnv } from '../../shared/log.js';
import { assertUsign, parseUsignPublicKey } from '../../shared/usign/index.js';
import { generateBrokerConfig } from '../../ota/core/broker-config.js';
import { startArtifactServer } from '../../ota/adapters/artifact-server.js';
import { parseReleaseManifest } from '../../shared/ota/manifest.js';
import { isSerial } from '../../shared/ota/protocol.js';
import { connectController, loadRolloutState, runRollout } from '../../ota/adapters/rollout-controller.js';
import { createRollout, formatStatus, parseCohort, parseWindow, widenCohort } from '../../ota/core/rollout-state.js';

const HELP = `usage: connector ota broker-config --out DIR --cafile F --certfile F --keyfile F [--host 0.0.0.0] [--port 8883]
                                    [--controller CN ...] [--crlfile F] [--acl-file PATH] [--user NAME]
       connector ota serve --dir DIR --cert F --key F [--host 0.0.0.0] [--port 8443]
       connector ota rollout --release MANIFEST [--sig MANIFEST.sig] [--pub KEY.pub ...] --devices S1,S2|@FILE
                             --cohort 10%|S1,S2 --fail-threshold N [--window HH:MM-HH:MM] [--max-parallel 10]
                             --state FILE --broker mqtts://HOST:PORT --ca F --cert F --key F [--rollout-id ID]
       connector ota status --state FILE [--json]

broker-config  writes DIR/mosquitto.conf and DIR/acl (mutual TLS 1.3, CN as username and client id)
serve          HTTPS static server for artifacts with Range support; runs until SIGINT/SIGTERM
rollout        publishes jobs to the cohort and follows device reports until every cohort device has
               finished (exit 0) or the failure threshold paused the rollout (exit 3); rerun with the same
               --state to resume after a restart or to widen --cohort. --window is in UTC.
status         prints the rollout state file
`;

function int(p: Parsed, key: string, def: number, min: number, max: number): number {
  const v = str(p, key);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${key} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}

function list(p: Parsed, key: string): string[] {
  const v = p.values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

async function readOrFail(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new ConnectorError('CK_ERR_IO', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
}

async function brokerConfig(p: Parsed): Promise<number> {
  const out = resolve(requireStr(p, 'out'));
  const controllers = list(p, 'controller');
  const crlfile = str(p, 'crlfile');
  const user = str(p, 'user');
  const files = generateBrokerConfig({
    cafile: resolve(requireStr(p, 'cafile')),
    certfile: resolve(requireStr(p, 'certfile')),
    keyfile: resolve(requireStr(p, 'keyfile')),
    aclFile: resolve(str(p, 'acl-file') ?? join(out, 'acl')),
    host: str(p, 'host') ?? '0.0.0.0',
    port: int(p, 'port', 8883, 1, 65535),
    controllerUsers: controllers.length > 0 ? controllers : ['connector-controller'],
    ...(crlfile ? { crlfile: resolve(crlfile) } : {}),
    ...(user ? { runAsUser: user } : {}),
  });
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'mosquitto.conf'), files.mosquittoConf);
  await writeFile(str(p, 'acl-file') ?? join(out, 'acl'), files.acl);
  process.stdout.write(`wrote ${join(out, 'mosquitto.conf')} and ${str(p, 'acl-file') ?? join(out, 'acl')}\nrun: mosquitto -c ${join(out, 'mosquitto.conf')}\n`);
  return 0;
}

async function serve(p: Parsed): Promise<number> {
  const log = loggerFromEnv(process.env, { component: 'ota-serve' });
  const server = await startArtifactServer({
    dir: requireStr(p, 'dir'),
    cert: await readOrFail(requireStr(p, 'cert'), 'certificate'),
    key: await readOrFail(requireStr(p, 'key'), 'key'),
    host: str(p, 'host') ?? '0.0.0.0',
    port: int(p, 'port', 8443, 0, 65535),
    log,
  });
  log.info('artifact server listening', { url: server.url });
  process.stdout.write(`serving ${requireStr(p, 'dir')} at ${server.url}\n`);
  await new Promise<void>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
  await server.close();
  return 0;
}

async function fleetOf(spec: string): Promise<string[]> {
  const text = spec.startsWith('@') ? (await readOrFail(spec.slice(1), 'device list')).toString('utf8') : spec;
  const serials = text.split(/[\s,]+/).map((s) => s.trim()).filter((s) => s !== '' && !s.startsWith('#'));
  const bad = serials.find((s) => !isSerial(s));
  if (bad !== undefined) throw new UsageError(`--devices: "${bad}" is not a device serial`);
  if (serials.length === 0) throw new UsageError('--devices lists no devices');
  return [...new Set(serials)];
}

async function rollout(p: Parsed): Promise<number> {
  const log = loggerFromEnv(process.env, { component: 'ota-rollout' });
  const manifestFile = requireStr(p, 'release');
  const manifest = await readOrFail(manifestFile, 'release manifest');
  const m = parseReleaseManifest(manifest);
  const sigFile = str(p, 'sig') ?? `${manifestFile}.sig`;
  const signature = (await readOrFail(sigFile, 'signature')).toString('utf8');
  const pubs = list(p, 'pub');
  if (pubs.length > 0) {
    const keys = await Promise.all(pubs.map(async (f) => parseUsignPublicKey((await readOrFail(f, 'public key')).toString('utf8'))));
    assertUsign(manifest, signature, keys);
  }
  const stateFile = requireStr(p, 'state');
  const sha = createHash('sha256').update(manifest).digest('hex');
  const cohort = parseCohort(requireStr(p, 'cohort'));
  const window = str(p, 'window');
  let state = await loadRolloutState(stateFile);
  if (state) {
    if (state.release.manifestSha256 !== sha) {
      throw new ConnectorError('CK_ERR_OTA_STATE', `${stateFile} belongs to release ${state.release.version} (another manifest); use a new --state for this release`);
    }
    state = widenCohort(state, cohort, new Date());
    if (flag(p, 'resume-paused') && state.status === 'paused') state = { ...state, status: 'active' };
  } else {
    const failThreshold = int(p, 'fail-threshold', 0, 1, 1_000_000);
    if (failThreshold === 0) throw new UsageError('--fail-threshold N is required');
    state = createRollout({
      rolloutId: str(p, 'rollout-id') ?? `rel-${m.version}-${sha.slice(0, 8)}`,
      release: { version: m.version, manifestSha256: sha },
      fleet: await fleetOf(requireStr(p, 'devices')),
      cohort,
      failThreshold,
      maxParallel: int(p, 'max-parallel', 10, 1, 100_000),
      ...(window ? { window: parseWindow(window) } : {}),
      now: new Date(),
    });
  }
  const client = await connectController(
    {
      url: requireStr(p, 'broker'),
      ca: await readOrFail(requireStr(p, 'ca'), 'CA'),
      cert: await readOrFail(requireStr(p, 'cert'), 'certificate'),
      key: await readOrFail(requireStr(p, 'key'), 'key'),
    },
    `connector-rollout-${process.pid}`,
  );
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  try {
    const end = await runRollout({ client, stateFile, initial: state, manifest, signature, log, untilSettled: true, signal: abort.signal });
    process.stdout.write(formatStatus(end) + '\n');
    return end.status === 'paused' ? 3 : end.status === 'completed' ? 0 : 1;
  } finally {
    await client.endAsync();
  }
}

async function status(p: Parsed): Promise<number> {
  const file = requireStr(p, 'state');
  const s = await loadRolloutState(file);
  if (!s) throw new ConnectorError('CK_ERR_OTA_STATE', `no rollout state at ${file}`);
  process.stdout.write(flag(p, 'json') ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s) + '\n');
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, {
    out: { type: 'string' },
    cafile: { type: 'string' },
    certfile: { type: 'string' },
    keyfile: { type: 'string' },
    crlfile: { type: 'string' },
    'acl-file': { type: 'string' },
    user: { type: 'string' },
    controller: { type: 'string', multiple: true },
    host: { type: 'string' },
    port: { type: 'string' },
    dir: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    release: { type: 'string' },
    sig: { type: 'string' },
    pub: { type: 'string', multiple: true },
    devices: { type: 'string' },
    cohort: { type: 'string' },
    'fail-threshold': { type: 'string' },
    window: { type: 'string' },
    'max-parallel': { type: 'string' },
    state: { type: 'string' },
    broker: { type: 'string' },
    'rollout-id': { type: 'string' },
    'resume-paused': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  return runSubcommand('ota', p, HELP, { 'broker-config': brokerConfig, serve, rollout, status });
}
