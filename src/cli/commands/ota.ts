// SPDX-License-Identifier: UNLICENSED
// `connector ota broker-config|serve|rollout|status`: the datacentre side of over-the-air updates
// (docs/ota.md). Parses the command line; src/ota/main.ts does the work.
import { flag, parseCommandArgs, requireStr, str, runSubcommand, type Parsed } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { rollout, rolloutController, rolloutStatus, serveArtifacts, writeBrokerConfig } from '../../ota/main.js';

const HELP = `usage: connector ota broker-config --out DIR --cafile F --certfile F --keyfile F [--host 0.0.0.0] [--port 8883]
                                    [--controller CN ...] [--observer CN ...] [--crlfile F] [--acl-file PATH] [--user NAME]
                                    [--legacy-job-state]
       connector ota serve --dir DIR --cert F --key F [--host 0.0.0.0] [--port 8443] [--metrics HOST:PORT]
       connector ota rollout --release MANIFEST [--sig MANIFEST.sig] [--pub KEY.pub ...] --devices S1,S2|@FILE
                             --cohort 10%|S1,S2 --fail-threshold N [--window HH:MM-HH:MM] [--max-parallel 10]
                             --state FILE --broker mqtts://HOST:PORT --ca F --cert F --key F [--rollout-id ID]
       connector ota controller --dir DIR --releases DIR --pub KEY.pub [--pub ...] --devices S1,S2|@FILE
                                --broker mqtts://HOST:PORT --ca F --cert F --key F [--host 127.0.0.1] [--port 8089]
       connector ota status --state FILE [--json]

broker-config  writes DIR/mosquitto.conf and DIR/acl (mutual TLS 1.3, CN as username and client id);
               --observer CN may only read units' status, health and job reports (the console's identity);
               --legacy-job-state also accepts reports from agents that publish one topic per job
               (needed until every unit runs an agent that reports on job-state; unbounded topics)
serve          HTTPS static server for artifacts with Range support; runs until SIGINT/SIGTERM
rollout        publishes jobs to the cohort and follows device reports until every cohort device has
               finished (exit 0) or the failure threshold paused the rollout (exit 3); rerun with the same
               --state to resume after a restart or to widen --cohort. --window is in UTC.
controller     the rollout controller as a service: runs every rollout in DIR (one state file each, resumed
               after a restart) and starts, pauses, resumes and widens them through a JSON API on HOST:PORT
               (the console's rolloutApi; no authentication of its own: keep it on loopback). Releases are
               DIR/NAME.json beside NAME.json.sig, offered only when the signature verifies under --pub.
               One rollout sends jobs at a time.
status         prints the rollout state file
`;

/** HOST:PORT (an IPv6 host in brackets); undefined when the option is absent. */
function hostPort(p: Parsed, key: string): { host: string; port: number } | undefined {
  const v = str(p, key);
  if (v === undefined) return undefined;
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || !m[1] || port > 65535) throw new UsageError(`--${key} must be HOST:PORT, e.g. 127.0.0.1:9102, got "${v}"`);
  return { host: m[1], port };
}

function int(p: Parsed, key: string, min: number, max: number): number | undefined {
  const v = str(p, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${key} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}

function list(p: Parsed, key: string): string[] {
  const v = p.values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

function brokerConfig(p: Parsed): Promise<number> {
  return writeBrokerConfig({
    out: requireStr(p, 'out'),
    cafile: requireStr(p, 'cafile'),
    certfile: requireStr(p, 'certfile'),
    keyfile: requireStr(p, 'keyfile'),
    aclFile: str(p, 'acl-file'),
    host: str(p, 'host') ?? '0.0.0.0',
    port: int(p, 'port', 1, 65535) ?? 8883,
    controllers: list(p, 'controller'),
    observers: list(p, 'observer'),
    crlfile: str(p, 'crlfile'),
    user: str(p, 'user'),
    legacyJobState: flag(p, 'legacy-job-state'),
  });
}

function serve(p: Parsed): Promise<number> {
  return serveArtifacts({
    dir: requireStr(p, 'dir'),
    cert: requireStr(p, 'cert'),
    key: requireStr(p, 'key'),
    host: str(p, 'host') ?? '0.0.0.0',
    port: int(p, 'port', 0, 65535) ?? 8443,
    metrics: hostPort(p, 'metrics'),
  });
}

function rolloutCmd(p: Parsed): Promise<number> {
  return rollout({
    release: requireStr(p, 'release'),
    sig: str(p, 'sig'),
    pubs: list(p, 'pub'),
    devices: str(p, 'devices'),
    cohort: requireStr(p, 'cohort'),
    failThreshold: int(p, 'fail-threshold', 1, 1_000_000),
    window: str(p, 'window'),
    maxParallel: int(p, 'max-parallel', 1, 100_000) ?? 10,
    state: requireStr(p, 'state'),
    broker: requireStr(p, 'broker'),
    ca: requireStr(p, 'ca'),
    cert: requireStr(p, 'cert'),
    key: requireStr(p, 'key'),
    rolloutId: str(p, 'rollout-id'),
    resumePaused: flag(p, 'resume-paused'),
  });
}

function controller(p: Parsed): Promise<number> {
  return rolloutController({
    dir: requireStr(p, 'dir'),
    releases: requireStr(p, 'releases'),
    pubs: list(p, 'pub'),
    devices: requireStr(p, 'devices'),
    broker: requireStr(p, 'broker'),
    ca: requireStr(p, 'ca'),
    cert: requireStr(p, 'cert'),
    key: requireStr(p, 'key'),
    host: str(p, 'host') ?? '127.0.0.1',
    port: int(p, 'port', 0, 65535) ?? 8089,
  });
}

function status(p: Parsed): Promise<number> {
  return rolloutStatus({ state: requireStr(p, 'state'), json: flag(p, 'json') });
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
    'legacy-job-state': { type: 'boolean' },
    controller: { type: 'string', multiple: true },
    observer: { type: 'string', multiple: true },
    host: { type: 'string' },
    port: { type: 'string' },
    metrics: { type: 'string' },
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
    releases: { type: 'string' },
    broker: { type: 'string' },
    'rollout-id': { type: 'string' },
    'resume-paused': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  return runSubcommand('ota', p, HELP, { 'broker-config': brokerConfig, serve, rollout: rolloutCmd, controller, status });
}
