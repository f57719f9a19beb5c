// SPDX-License-Identifier: UNLICENSED
// The operator console (`connector console`): wiring of the config, the registry file, the operators
// file, the headends' live state, the operator log and the HTTPS server. Nothing runs at import.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ConfigError, errorMessage, UsageError } from '../shared/errors.js';
import { loggerFromEnv, type Logger } from '../shared/log.js';
import { claimDevice, revokeDevice } from '../shared/registry/registry.js';
import { openRegistryStore } from '../shared/registry/open.js';
import { parseJsonText } from '../shared/schema/schema.js';
import { startApiServer, type ConsoleServer } from './adapters/api-server.js';
import { pollHeadends, type HeadendPoll } from './adapters/headend-client.js';
import { watchUnitReports } from './adapters/unit-reports.js';
import { verifyAuditFile } from '../shared/audit/files.js';
import { OperatorLog } from './adapters/operator-log.js';
import { hashPassword } from './adapters/passwords.js';
import { parseConsoleConfigText, type ConsoleConfig } from './core/config.js';
import { parseOperators, ROLES, type Operator, type Role } from './core/operators.js';

/** The page's files, beside this module in the sources and copied beside it in dist/. */
const WEB_DIR = fileURLToPath(new URL('./web/', import.meta.url));

export interface RunningConsole extends ConsoleServer {
  readonly url: string;
}

/** Operators re-read when the file changes (by mtime), so `operator add` applies without a restart. */
function operatorsSource(file: string): () => readonly Operator[] {
  let mtime = -1;
  let ops: readonly Operator[] = [];
  return () => {
    const m = statSync(file).mtimeMs;
    if (m !== mtime) {
      ops = parseOperators(JSON.parse(readFileSync(file, 'utf8')) as unknown, file);
      mtime = m;
    }
    return ops;
  };
}

export async function startConsole(c: ConsoleConfig, log: Logger): Promise<RunningConsole> {
  const operators = operatorsSource(c.operatorsFile);
  operators(); // a broken operators file stops the start, with its message
  let live: HeadendPoll = { sessions: [], unreachable: [], at: 0 };
  let polling = false;
  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      live = await pollHeadends(c.headends, Math.min(2_000, c.pollMs * 2));
    } finally {
      polling = false;
    }
  };
  await poll();
  const registry = await openRegistryStore(c.registry, { log });
  const reports = c.otaBroker
    ? await watchUnitReports({
        url: c.otaBroker.url,
        ca: readFileSync(c.otaBroker.caFile),
        cert: readFileSync(c.otaBroker.certFile),
        key: readFileSync(c.otaBroker.keyFile),
        log,
      })
    : null;
  const timer = setInterval(() => void poll(), c.pollMs);
  const server = await startApiServer(
    {
      cert: readFileSync(c.tlsCertFile, 'utf8'),
      key: readFileSync(c.tlsKeyFile, 'utf8'),
      ...(c.clientCaFile ? { clientCa: readFileSync(c.clientCaFile, 'utf8') } : {}),
    },
    c.host,
    c.port,
    {
      operators,
      readRegistry: () => registry.current(),
      updateRegistry: (change) => registry.update(change),
      claim: (r, serial, tenant, segment, site) => claimDevice(r, serial, tenant, new Date(), segment, site),
      revoke: (r, serial) => revokeDevice(r, serial, new Date()),
      live: () => live,
      auditLines: () =>
        c.auditLogFile && existsSync(c.auditLogFile) ? readFileSync(c.auditLogFile, 'utf8').split('\n').filter(Boolean) : [],
      operatorLog: new OperatorLog(c.operatorLogFile),
      log,
      webDir: WEB_DIR,
      sessionIdleMs: c.sessionIdleS * 1_000,
      pollMs: c.pollMs,
      drillApi: c.drillApi,
      rolloutApi: c.rolloutApi,
      unitReport: (serial) => reports?.get(serial) ?? null,
      verifyAudit: () => (c.auditLogFile === null ? null : verifyAuditFile(c.auditLogFile)),
      rolloutFiles: () => (c.rolloutDir === null ? null : readRolloutFiles(c.rolloutDir)),
    },
  ).catch(async (e: unknown) => {
    clearInterval(timer);
    await reports?.close();
    await registry.close();
    throw e;
  });
  const url = `https://${server.address.address.includes(':') ? `[${server.address.address}]` : server.address.address}:${server.address.port}/`;
  log.info('console listening', { url, headends: c.headends.length });
  return {
    ...server,
    url,
    async close() {
      clearInterval(timer);
      await server.close();
      await reports?.close();
      await registry.close();
    },
  };
}

/** `connector console serve --config FILE`: runs until SIGTERM/SIGINT. */
export async function runConsole(configFile: string): Promise<number> {
  const file = resolve(configFile);
  const c = parseConsoleConfigText(readFileSync(file, 'utf8'), file, dirname(file));
  const log = loggerFromEnv(process.env, { component: 'console' });
  const server = await startConsole(c, log);
  process.stdout.write(`console: listening on ${server.url}\n`);
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      log.info('console stopping');
      void server.close().then(resolveStop);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

/** `connector console operator add`: adds or replaces an operator in the operators file. */
export async function addOperator(o: {
  file: string;
  name: string;
  role: string;
  tenants: readonly string[];
  /** Empty with a certificate: that operator logs in with the certificate only. */
  password: string;
  /** A PEM client certificate the operator may log in with (its SHA-256 is stored). */
  certFile?: string | undefined;
}): Promise<number> {
  if (!ROLES.includes(o.role as Role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, not "${o.role}"`);
  const certSha256 = o.certFile === undefined ? undefined : certFingerprint(o.certFile);
  if (o.password.length < 12 && !(certSha256 && o.password === '')) {
    throw new UsageError(
      `the password must have at least 12 characters${certSha256 ? ' (or none, to log in with the certificate only)' : ''}`,
    );
  }
  const file = resolve(o.file);
  const doc = existsSync(file)
    ? (parseJsonText(readFileSync(file, 'utf8'), (problem) => {
        throw new ConfigError(file, problem);
      }) as { operators?: unknown[] })
    : { operators: [] };
  const others = (Array.isArray(doc.operators) ? doc.operators : []).filter((x) => (x as { name?: unknown }).name !== o.name);
  const next = {
    operators: [
      ...others,
      {
        name: o.name,
        role: o.role,
        ...(o.tenants.length ? { tenants: [...o.tenants] } : {}),
        ...(o.password ? { password: await hashPassword(o.password) } : {}),
        ...(certSha256 ? { certSha256 } : {}),
      },
    ],
  };
  parseOperators(next, file);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(next, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  process.stdout.write(`operator ${o.name} (${o.role}${o.tenants.length ? `: ${o.tenants.join(', ')}` : ''}) written to ${file}\n`);
  return 0;
}

/** Every *.json in the rollout directory, parsed; one that cannot be read or parsed is named with why. */
function readRolloutFiles(dir: string): { file: string; doc: unknown }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch (e) {
    return [{ file: dir, doc: `cannot read the rollout directory: ${errorMessage(e)}` }];
  }
  return names.sort().map((name) => {
    try {
      return { file: name, doc: JSON.parse(readFileSync(join(dir, name), 'utf8')) as unknown };
    } catch (e) {
      return { file: name, doc: `unreadable: ${errorMessage(e)}` };
    }
  });
}

/** The SHA-256 of a PEM certificate's DER, as the operators file keeps it. */
function certFingerprint(file: string): string {
  try {
    return new X509Certificate(readFileSync(file)).fingerprint256.replace(/:/g, '').toLowerCase();
  } catch (e) {
    throw new UsageError(`--cert ${file}: not a readable PEM certificate (${errorMessage(e)})`);
  }
}
