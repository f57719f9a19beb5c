// SPDX-License-Identifier: UNLICENSED
// `connector headend --config FILE`: run the datacentre tunnel terminator (docs/headend.md).
import { parseCommandArgs, requireStr } from '../../shared/cli/args.js';
import { loggerFromEnv } from '../../shared/log.js';
import { runHeadend } from '../../headend/main.js';

const HELP = `usage: connector headend --config FILE

Terminates Connector TLS tunnels, maps each device to its tenant segment (registry) and bridges the
segment to its VTEPs as VXLAN/UDP 4789. JSON-lines logs on stderr (LOG_LEVEL, LOG_FORMAT=human).
Signals: SIGHUP reloads the registry, SIGTERM/SIGINT stop. See docs/headend.md for the config keys.
`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { config: { type: 'string', short: 'c' } }, false);
  if (p.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const code = await runHeadend(requireStr(p, 'config'), loggerFromEnv(process.env, { component: 'headend' }));
  // Stopped: byes sent, the audit committed. The sockets still open are the kernel's to close; freeing
  // thousands one at a time (OpenSSL's teardown of each connection, its close event) only delays the exit.
  process.exit(code);
}
