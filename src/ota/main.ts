// SPDX-License-Identifier: UNLICENSED
// The OTA services' wiring, one function per subcommand: broker config, artifact server, rollout
// controller (`connector ota ...`) and the release tooling (`connector release ...`). Picks the real
// broker client, files, clock and signals; nothing runs at import.
import { serveGuardMetrics } from '../shared/net/guard-metrics.js';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { ConnectorError, UsageError } from '../shared/errors.js';
import { loggerFromEnv, type Logger } from '../shared/log.js';
import { parseReleaseManifest, type ArtifactKind } from '../shared/ota/manifest.js';
import {
  assertUsign,
  encodeUsignPublicKey,
  encodeUsignSecretKey,
  encodeUsignSignature,
  generateUsignKeyPair,
  parseUsignPublicKey,
  parseUsignSecretKey,
  signUsign,
} from '../shared/usign/index.js';
import { generateBrokerConfig } from './core/broker-config.js';
import { composeRelease, describeRelease, signatureComment } from './core/release.js';
import { runRolloutLoop } from './core/rollout-run.js';
import { parseFleet, planRollout, rolloutExitCode } from './core/rollout-plan.js';
import { formatStatus, parseCohort, type RolloutState } from './core/rollout-state.js';
import { startArtifactServer } from './adapters/artifact-server.js';
import { exists, loadRolloutState, readInput, readInputText, rolloutStateFile, writeNew } from './adapters/files.js';
import { connectController, mqttRolloutChannel, sharedRolloutChannels } from './adapters/rollout-mqtt.js';
import { startRolloutService } from './adapters/rollout-service.js';
import { serveRolloutApi } from './adapters/rollout-http-api.js';

function out(text: string): void {
  process.stdout.write(text + '\n');
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise<void>((r) => {
    process.once('SIGINT', () => r());
    process.once('SIGTERM', () => r());
  });
}

// --- connector ota ---

export interface BrokerConfigCommand {
  readonly out: string;
  readonly cafile: string;
  readonly certfile: string;
  readonly keyfile: string;
  readonly aclFile?: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly controllers: readonly string[];
  readonly observers?: readonly string[];
  readonly crlfile?: string | undefined;
  readonly user?: string | undefined;
  readonly legacyJobState?: boolean | undefined;
}

export async function writeBrokerConfig(o: BrokerConfigCommand): Promise<number> {
  const dir = resolve(o.out);
  const aclFile = o.aclFile ?? join(dir, 'acl');
  const files = generateBrokerConfig({
    cafile: resolve(o.cafile),
    certfile: resolve(o.certfile),
    keyfile: resolve(o.keyfile),
    aclFile: resolve(aclFile),
    host: o.host,
    port: o.port,
    controllerUsers: o.controllers.length > 0 ? o.controllers : ['connector-controller'],
    ...(o.observers?.length ? { observerUsers: o.observers } : {}),
    ...(o.crlfile ? { crlfile: resolve(o.crlfile) } : {}),
    ...(o.user ? { runAsUser: o.user } : {}),
    ...(o.legacyJobState ? { legacyJobState: true } : {}),
  });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'mosquitto.conf'), files.mosquittoConf);
  await writeFile(aclFile, files.acl);
  out(`wrote ${join(dir, 'mosquitto.conf')} and ${aclFile}\nrun: mosquitto -c ${join(dir, 'mosquitto.conf')}`);
  return 0;
}

export interface ServeCommand {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** GET /metrics (the guard's refusals) there; absent: off. */
  readonly metrics?: { host: string; port: number } | undefined;
}

/** `connector ota serve`: the artifact server until SIGINT or SIGTERM. */
export async function serveArtifacts(o: ServeCommand): Promise<number> {
  const log = loggerFromEnv(process.env, { component: 'ota-serve' });
  const server = await startArtifactServer({
    dir: o.dir,
    cert: await readInput(o.cert, 'certificate'),
    key: await readInput(o.key, 'key'),
    host: o.host,
    port: o.port,
    log,
  });
  log.info('artifact server listening', { url: server.url });
  const metrics = o.metrics
    ? await serveGuardMetrics({ ...o.metrics, services: [{ name: 'artifact-server', guard: server.guard }], log })
    : undefined;
  if (metrics) log.info('artifact server metrics listening', { host: metrics.address.address, port: metrics.address.port });
  out(`serving ${o.dir} at ${server.url}`);
  await untilSignal();
  await metrics?.close();
  await server.close();
  return 0;
}

export interface RunRolloutOptions {
  readonly client: MqttClient;
  readonly stateFile: string;
  readonly initial: RolloutState;
  readonly manifest: Buffer;
  readonly signature: string | undefined;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly tickMs?: number;
  readonly untilSettled?: boolean;
  readonly signal?: AbortSignal;
  readonly onChange?: (s: RolloutState) => void;
}

/** The rollout loop over a connected broker client, persisting to `stateFile`. */
export function runRollout(o: RunRolloutOptions): Promise<RolloutState> {
  return runRolloutLoop({
    channel: mqttRolloutChannel(o.client),
    store: rolloutStateFile(o.stateFile),
    initial: o.initial,
    manifest: o.manifest,
    signature: o.signature,
    log: o.log,
    now: o.now ?? (() => new Date()),
    wait: (ms) => sleep(ms),
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
    ...(o.untilSettled !== undefined ? { untilSettled: o.untilSettled } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onChange ? { onChange: o.onChange } : {}),
  });
}

export interface RolloutCommand {
  readonly release: string;
  readonly sig?: string | undefined;
  readonly pubs: readonly string[];
  /** S1,S2 or @FILE; needed for a new rollout only. */
  readonly devices?: string | undefined;
  readonly cohort: string;
  readonly failThreshold?: number | undefined;
  readonly window?: string | undefined;
  readonly maxParallel: number;
  readonly state: string;
  readonly broker: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly rolloutId?: string | undefined;
  readonly resumePaused: boolean;
}

/** `connector ota rollout`: exit 0 completed, 3 paused at the failure threshold. */
export async function rollout(o: RolloutCommand): Promise<number> {
  const log = loggerFromEnv(process.env, { component: 'ota-rollout' });
  const manifestBytes = await readInput(o.release, 'release manifest');
  const manifest = parseReleaseManifest(manifestBytes);
  const signature = await readInputText(o.sig ?? `${o.release}.sig`, 'signature');
  if (o.pubs.length > 0) {
    const keys = await Promise.all(o.pubs.map(async (f) => parseUsignPublicKey(await readInputText(f, 'public key'))));
    assertUsign(manifestBytes, signature, keys);
  }
  const cohort = parseCohort(o.cohort);
  const state = await planRollout(await loadRolloutState(o.state), {
    manifestBytes,
    manifest,
    cohort,
    failThreshold: o.failThreshold,
    maxParallel: o.maxParallel,
    window: o.window,
    rolloutId: o.rolloutId,
    resumePaused: o.resumePaused,
    stateFile: o.state,
    now: new Date(),
    fleet: async () => {
      if (o.devices === undefined || o.devices === '') throw new UsageError('--devices is required');
      return parseFleet(o.devices.startsWith('@') ? await readInputText(o.devices.slice(1), 'device list') : o.devices);
    },
  });
  const client = await connectController(
    { url: o.broker, ca: await readInput(o.ca, 'CA'), cert: await readInput(o.cert, 'certificate'), key: await readInput(o.key, 'key') },
    `connector-rollout-${process.pid}`,
  );
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  try {
    const end = await runRollout({
      client,
      stateFile: o.state,
      initial: state,
      manifest: manifestBytes,
      signature,
      log,
      untilSettled: true,
      signal: abort.signal,
    });
    out(formatStatus(end));
    return rolloutExitCode(end);
  } finally {
    await client.endAsync();
  }
}

export interface ControllerCommand {
  readonly dir: string;
  readonly releases: string;
  readonly pubs: readonly string[];
  /** S1,S2 or @FILE (read again at every start, so units added since are covered). */
  readonly devices: string;
  readonly broker: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

/** `connector ota controller`: the rollouts of a directory, run and steered through a JSON API, until SIGINT/SIGTERM. */
export async function rolloutController(o: ControllerCommand): Promise<number> {
  const log = loggerFromEnv(process.env, { component: 'ota-controller' });
  if (o.pubs.length === 0) throw new UsageError('--pub KEY.pub is required: releases are started only when their signature verifies');
  const keys = await Promise.all(o.pubs.map(async (f) => parseUsignPublicKey(await readInputText(f, 'public key'))));
  await mkdir(o.dir, { recursive: true });
  const client = await connectController(
    { url: o.broker, ca: await readInput(o.ca, 'CA'), cert: await readInput(o.cert, 'certificate'), key: await readInput(o.key, 'key') },
    `connector-controller-${process.pid}`,
  );
  const service = await startRolloutService({
    dir: o.dir,
    releasesDir: o.releases,
    keys,
    fleet: async () => parseFleet(o.devices.startsWith('@') ? await readInputText(o.devices.slice(1), 'device list') : o.devices),
    channel: sharedRolloutChannels(client),
    log,
  });
  const api = await serveRolloutApi({ host: o.host, port: o.port, ops: service.ops, log });
  log.info('rollout controller API listening', { address: `${api.address.address}:${api.address.port}`, dir: o.dir });
  await untilSignal();
  await api.close();
  await service.close();
  await client.endAsync();
  return 0;
}

export async function rolloutStatus(o: { state: string; json: boolean }): Promise<number> {
  const s = await loadRolloutState(o.state);
  if (!s) throw new ConnectorError('CK_ERR_OTA_STATE', `no rollout state at ${o.state}`);
  out(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
  return 0;
}

// --- connector release ---

export async function releaseKeygen(o: { out: string; comment?: string | undefined }): Promise<number> {
  const pair = generateUsignKeyPair({ comment: o.comment ?? `connector release key ${basename(o.out)}` });
  await writeNew(`${o.out}.sec`, encodeUsignSecretKey(pair.secretKey, randomBytes(16)), 0o600);
  await writeNew(`${o.out}.pub`, encodeUsignPublicKey(pair.publicKey), 0o644);
  out(`key id ${pair.publicKey.keyId}\npublic key ${o.out}.pub\nsecret key ${o.out}.sec (keep offline)`);
  return 0;
}

export interface ReleaseManifestCommand {
  readonly out: string;
  readonly version: string;
  readonly board: string;
  readonly artifacts: readonly { kind: ArtifactKind; file: string; urls: readonly string[] }[];
  readonly minVersion?: string | undefined;
  readonly osCompatVersion?: string | undefined;
  readonly notes?: string | undefined;
}

export async function releaseManifest(o: ReleaseManifestCommand): Promise<number> {
  const artifacts = [];
  for (const a of o.artifacts)
    artifacts.push({ kind: a.kind, name: basename(a.file), data: await readInput(a.file, 'artifact'), urls: a.urls });
  const { manifest, text } = composeRelease({
    version: o.version,
    board: o.board,
    minVersion: o.minVersion,
    osCompatVersion: o.osCompatVersion,
    notes: o.notes,
    createdAt: new Date(),
    artifacts,
  });
  await writeFile(o.out, text);
  out(`wrote ${o.out} (version ${manifest.version}, ${manifest.artifacts.length} artifact(s))`);
  return 0;
}

export async function releaseSign(o: { key: string; manifest: string; out?: string | undefined }): Promise<number> {
  const bytes = Buffer.from(await readInputText(o.manifest, 'manifest'));
  const m = parseReleaseManifest(bytes);
  const key = parseUsignSecretKey(await readInputText(o.key, 'secret key'));
  const sigFile = o.out ?? `${o.manifest}.sig`;
  await writeFile(sigFile, encodeUsignSignature(signUsign(bytes, key, signatureComment(key.keyId, m.version))));
  out(`signed ${o.manifest} (version ${m.version}) with key ${key.keyId}: ${sigFile}`);
  return 0;
}

/** Exit 0 when the signature verifies with one of the keys and the manifest is valid. */
export async function releaseVerify(o: { pubs: readonly string[]; manifest: string; sig?: string | undefined }): Promise<number> {
  const keys = await Promise.all(o.pubs.map(async (f) => parseUsignPublicKey(await readInputText(f, 'public key'))));
  const bytes = await readInput(o.manifest, 'manifest');
  const sigFile = o.sig ?? `${o.manifest}.sig`;
  if (!(await exists(sigFile)))
    throw new ConnectorError('CK_ERR_OTA_BAD_SIGNATURE', `no signature ${sigFile}: unsigned releases are refused`);
  const keyId = assertUsign(bytes, await readInputText(sigFile, 'signature'), keys);
  out(`ok: ${o.manifest} signed by key ${keyId}; ${describeRelease(parseReleaseManifest(bytes))}`);
  return 0;
}
