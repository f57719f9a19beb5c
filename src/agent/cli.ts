// SPDX-License-Identifier: UNLICENSED
// `connector-agent <command>`: the device program. Entry point only: parse argv, load the command.
import { readFileSync } from 'node:fs';
import { runCommand, type CommandTable } from '../cli/dispatch.js';

export const AGENT_COMMANDS: CommandTable = {
  run: ['run.js', 'run the agent: --config FILE (OpenWrt UCI format, /etc/config/connector)'],
  status: ['status.js', 'print tunnel state, RTT, counters, MAC/neighbour tables, alarms [--json]'],
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-V') {
  process.stdout.write(`connector-agent ${version()}\n`);
} else {
  // Agent commands live in src/agent/commands/; reuse the dispatcher with that directory.
  process.exitCode = await runCommand('connector-agent', AGENT_COMMANDS, argv, new URL('./commands/', import.meta.url));
}
