// SPDX-License-Identifier: UNLICENSED
// Our own command-line tools, run the way an operator runs them: `connector factory init-ca|provision`
// for the lab's factory, `connector-agent status --json` to ask an agent how its tunnel is.
import { ConnectorError } from '../../shared/errors.js';
import { exec, type ExecResult } from '../../shared/exec.js';
import { programCommand, type Program } from './programs.js';

/** Time a tool gets to start (tsx compiles from sources in development) on top of its own work. */
const START_MS = 30_000;

function run(p: Program, args: readonly string[], timeoutMs = START_MS): Promise<ExecResult> {
  const c = programCommand(p);
  // Only errors: the factory's warnings about forced checks are expected in the lab.
  return exec(c.cmd, [...c.args, ...args], { cwd: c.cwd, env: { ...process.env, LOG_LEVEL: 'error' }, timeoutMs, allowFailure: true });
}

function failed(what: string, r: ExecResult): ConnectorError {
  return new ConnectorError('CK_ERR_LAB', `${what} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
}

/** `connector factory init-ca`: DIR/factory-ca.cert.pem and DIR/factory-ca.key.pem. */
export async function factoryInitCa(dir: string, commonName: string, years: number): Promise<void> {
  const r = await run('connector', ['factory', 'init-ca', '--dir', dir, '--cn', commonName, '--years', String(years)]);
  if (r.code !== 0) throw failed(`connector factory init-ca --dir ${dir}`, r);
}

export const FACTORY_CA_CERT_FILE = 'factory-ca.cert.pem';

export interface ProvisionArgs {
  serial: string;
  target: string;
  batch: string;
  station: string;
  hwRev: string;
  caDir: string;
  estUrl: string;
  dcAnchorFile: string;
  manifestDir: string;
  offset: number;
  force: boolean;
}

/** What `connector factory provision --json` reports that the lab uses. */
export interface ProvisionOutcome {
  record?: { serial: string; idevidFingerprint: string };
  files?: { csv: string; jsonl: string; allowlist: string };
}

export async function factoryProvision(a: ProvisionArgs): Promise<ProvisionOutcome> {
  const args = [
    'factory',
    'provision',
    '--serial',
    a.serial,
    '--target',
    a.target,
    '--batch',
    a.batch,
    '--station',
    a.station,
    '--hw-rev',
    a.hwRev,
    '--ca-dir',
    a.caDir,
    '--est-url',
    a.estUrl,
    '--dc-anchor',
    a.dcAnchorFile,
    '--manifest-dir',
    a.manifestDir,
    '--offset',
    String(a.offset),
    ...(a.force ? ['--force'] : []),
    '--json',
  ];
  const r = await run('connector', args);
  if (r.code !== 0) throw failed(`connector factory provision --serial ${a.serial}`, r);
  try {
    return JSON.parse(r.stdout) as ProvisionOutcome;
  } catch (e) {
    throw new ConnectorError('CK_ERR_LAB', `connector factory provision --json printed no JSON: ${r.stdout.slice(0, 200)}`, { cause: e });
  }
}

/** `connector-agent status --json --socket PATH`: the agent's status document. */
export async function agentStatus(socket: string, timeoutMs: number): Promise<unknown> {
  const r = await run('connector-agent', ['status', '--json', '--socket', socket], timeoutMs + START_MS);
  if (r.code !== 0)
    throw new ConnectorError('CK_ERR_LAB', r.stderr.trim().replace(/^connector-agent: /, '') || `connector-agent status exited ${r.code}`);
  try {
    return JSON.parse(r.stdout) as unknown;
  } catch (e) {
    throw new ConnectorError('CK_ERR_LAB', 'connector-agent status --json printed no JSON', { cause: e });
  }
}
