// SPDX-License-Identifier: UNLICENSED
// A device updater in its own process, for kill -9 tests. Usage (env):
//   CK_ROOT=<device root> CK_PUBKEY=<usign .pub text> CK_CA=<artifact server CA file> [CK_JOB=<job json file>]
//   [CK_KILL_AT=<point>]: at that step it prints "AT <point>" and hangs, waiting for the test's SIGKILL.
// Prints "AT <point>" at every step, "REPORT <json>" for every job state, "DONE <state>" at the end.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../../src/shared/log.js';
import { parseUsignPublicKey } from '../../../../src/shared/usign/index.js';
import { openSlotStore } from '../../../../src/agent/adapters/ota/slots.js';
import { createUpdater } from '../../../../src/agent/adapters/ota/updater.js';
import type { JobDocument } from '../../../../src/shared/ota/protocol.js';
import { currentAgentHealthy } from './device.js';
import { BOARD } from './release.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const root = env('CK_ROOT');
const killAt = process.env['CK_KILL_AT'];
const say = (line: string): void => {
  process.stdout.write(line + '\n');
};

const updater = createUpdater({
  serial: 'R3S-CHILD',
  board: BOARD,
  trustedKeys: [parseUsignPublicKey(env('CK_PUBKEY'))],
  slots: openSlotStore(root),
  stateDir: join(root, 'var'),
  report: (r) => say(`REPORT ${JSON.stringify(r)}`),
  healthy: () => currentAgentHealthy(root),
  healthDeadlineMs: 400,
  healthPollMs: 50,
  restart: async (why) => say(`RESTART ${why}`),
  sysupgrade: async () => 0,
  downloadCa: readFileSync(env('CK_CA')),
  log: silentLogger,
  sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
  at: async (point) => {
    say(`AT ${point}`);
    if (point === killAt) await new Promise(() => {}); // hang here until killed
  },
});

await updater.resume();
const jobFile = process.env['CK_JOB'];
if (jobFile) {
  const job = JSON.parse(readFileSync(jobFile, 'utf8')) as JobDocument;
  say(`DONE ${await updater.handleJob(job)}`);
} else {
  say('DONE resumed');
}
