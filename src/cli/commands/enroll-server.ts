// SPDX-License-Identifier: UNLICENSED
// `connector enroll-server --config FILE`: the EST server (RFC 7030) issuing operational certificates.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConnectorError } from '../../shared/errors.js';
import { loggerFromEnv } from '../../shared/log.js';
import { parseEstServerConfig } from '../../enroll/core/config.js';
import { startEstServer } from '../../enroll/adapters/est-server.js';
import { parseCommandArgs, requireStr } from '../../shared/cli/args.js';

const HELP = `usage: connector enroll-server --config FILE

Serves EST (RFC 7030) under /.well-known/est/: cacerts, csrattrs, simpleenroll (TLS client auth by
the factory IDevID), simplereenroll (by the current operational certificate). The registry file is
re-read when it changes, so 'connector registry claim|revoke' take effect at once. Logs are JSON lines
on stderr (LOG_LEVEL, LOG_FORMAT). SIGTERM/SIGINT stop. Config keys: docs/provisioning.md.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { config: { type: 'string' } }, false);
  if (p.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const file = resolve(requireStr(p, 'config'));
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot load ${file}: ${(e as Error).message}`);
  }
  const cfg = parseEstServerConfig(doc, dirname(file));
  const log = loggerFromEnv(process.env, { component: 'est' });
  const server = await startEstServer(cfg, { log, now: () => new Date() });
  process.stdout.write(`enroll-server: listening on ${server.url}\n`);
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      log.info('est stopping');
      void server.close().then(resolveStop);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
