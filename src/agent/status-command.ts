// SPDX-License-Identifier: UNLICENSED
// `connector-agent status [--json] [--config FILE | --socket PATH]`
import { readFileSync } from 'node:fs';
import { flag, parseCommandArgs, str } from '../shared/cli/args.js';
import { fetchStatus } from './adapters/status-socket.js';
import { parseAgentConfig } from './core/config.js';
import { renderStatus, type StatusDoc } from './core/status-format.js';

const HELP = `usage: connector-agent status [--json] [--config FILE] [--socket PATH]

Prints tunnel state, RTT, counters, the MAC and neighbour tables and alarms of the running agent.
  --json          machine-readable output
  --config FILE   UCI config to find the status socket (default /etc/config/connector)
  --socket PATH   status socket path (overrides --config)`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { json: { type: 'boolean' }, config: { type: 'string' }, socket: { type: 'string' } }, false);
  if (p.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const socket = str(p, 'socket') ?? parseAgentConfig(readFileSync(str(p, 'config') ?? '/etc/config/connector', 'utf8')).statusSocket;
  const doc = (await fetchStatus(socket)) as StatusDoc;
  process.stdout.write((flag(p, 'json') ? JSON.stringify(doc, null, 2) : renderStatus(doc)) + '\n');
  return 0;
}
