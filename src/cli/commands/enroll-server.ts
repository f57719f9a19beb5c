// SPDX-License-Identifier: UNLICENSED
// `connector enroll-server --config FILE`: the EST server (RFC 7030) issuing operational certificates.
import { parseCommandArgs, requireStr } from '../../shared/cli/args.js';
import { runEnrollServer } from '../../enroll/main.js';

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
  return runEnrollServer({ configFile: requireStr(p, 'config') });
}
