// SPDX-License-Identifier: UNLICENSED
// `connector-agent <command>`: the device program. Entry point only: parse argv, load the command.
import { runCommand, usage, type CommandTable } from '../cli/dispatch.js';
import { productVersion } from '../shared/version.js';

export const AGENT_COMMANDS: CommandTable = {
  run: ['run.js', 'run the agent: --config FILE (OpenWrt UCI format, default /etc/config/connector)'],
  status: ['status.js', 'print tunnel state, RTT, counters, MAC/neighbour tables, alarms [--json]'],
};

const HELP_EXTRA = `
options:
  --version    print the version
  --self-test  check this binary's runtime: TAP addon, crypto, TLS 1.3`;

const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-V') {
  process.stdout.write(`connector-agent ${productVersion()}\n`);
} else if (argv[0] === '--self-test') {
  const { runSelfTest } = await import('./self-test.js');
  const result = runSelfTest();
  for (const c of result.checks) process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}\n`);
  process.exitCode = result.ok ? 0 : 1;
} else if (argv[0] === '--help' || argv[0] === '-h' || argv.length === 0) {
  process.stdout.write(usage('connector-agent', AGENT_COMMANDS) + '\n' + HELP_EXTRA + '\n');
  process.exitCode = argv.length === 0 ? 2 : 0;
} else {
  process.exitCode = await runCommand('connector-agent', AGENT_COMMANDS, argv, new URL('./commands/', import.meta.url));
}
