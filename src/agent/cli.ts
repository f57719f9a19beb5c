// SPDX-License-Identifier: UNLICENSED
// `connector-agent <command>`: the device program. Entry point only: parse argv, call main.ts.
// Literal imports and no top-level await: the image build bundles this file into one CommonJS binary.
import { runCommand, runProgram, usage, type CommandTable } from '../shared/cli/dispatch.js';
import { productVersion } from '../shared/version.js';
import { isLaneWorker, runLaneWorker } from './adapters/datagram-lane-worker.js';
import { setLaneEntry, workerEntry } from './adapters/datagram-lanes.js';

export const AGENT_COMMANDS: CommandTable = {
  run: [
    async () => ({ run: (await import('./main.js')).run }),
    'run the agent: --config FILE (OpenWrt UCI format, default /etc/config/connector)',
  ],
  status: [
    async () => ({ run: (await import('./main.js')).status }),
    'print tunnel state, RTT, counters, MAC/neighbour tables, alarms [--json]',
  ],
};

const HELP_EXTRA = `
options:
  --version    print the version
  --self-test  check this binary's runtime: TAP addon, crypto, TLS 1.3`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`connector-agent ${productVersion()}\n`);
    return 0;
  }
  if (argv[0] === '--self-test') {
    const result = (await import('./main.js')).selfTest();
    for (const c of result.checks) process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}\n`);
    return result.ok ? 0 : 1;
  }
  if (argv[0] === '--help' || argv[0] === '-h' || argv.length === 0) {
    process.stdout.write(usage('connector-agent', AGENT_COMMANDS) + '\n' + HELP_EXTRA + '\n');
    return argv.length === 0 ? 2 : 0;
  }
  return runCommand('connector-agent', AGENT_COMMANDS, argv);
}

// A datagram lane's worker thread starts from this same module (datagram-lanes.ts): from its file, or
// inside the single binary, where this module's URL is the executable's, from the source the launcher keeps.
if (isLaneWorker()) runLaneWorker();
else {
  setLaneEntry(workerEntry(import.meta.url));
  void runProgram('connector-agent', () => main(process.argv.slice(2)));
}
