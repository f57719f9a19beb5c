// SPDX-License-Identifier: UNLICENSED
// The lab's long-running programs (EST server, headend, agents): started detached inside their node's
// namespace with their output appended to a log, stopped by signal, and watched until they listen.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorError } from '../../shared/errors.js';
import { exec } from '../../shared/exec.js';
import { isAlive, spawnInNetns } from './netns.js';
import { nodeNs, writeLabState, type LabProcess, type LabState } from './state.js';

function labError(message: string): ConnectorError {
  return new ConnectorError('CK_ERR_LAB', message);
}

/** The last lines of a log, for error messages. */
export function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts (or restarts) a process recorded in the state; returns the updated state, already saved. */
export function startLabProcess(state: LabState, name: string): LabState {
  const p = state.processes.find((x) => x.name === name);
  if (!p) throw labError(`no process "${name}" in this lab; processes: ${state.processes.map((x) => x.name).join(', ')}`);
  if (p.pid > 0 && isAlive(p.pid)) return state;
  const [cmd, ...args] = p.cmd;
  if (cmd === undefined) throw labError(`process "${name}" has no command`);
  writeFileSync(p.log, `--- ${new Date().toISOString()} start ${name}\n`, { flag: 'a' });
  const pid = spawnInNetns(nodeNs(state, p.node), cmd, args, { logFile: p.log, cwd: p.cwd });
  const next = { ...state, processes: state.processes.map((x) => (x.name === name ? { ...x, pid } : x)) };
  writeLabState(next);
  return next;
}

/** Signals a lab process and waits (up to timeoutMs) for it to exit; SIGKILL is the fault-test tool. */
export async function stopLabProcess(state: LabState, name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000): Promise<void> {
  const p = state.processes.find((x) => x.name === name);
  if (!p || p.pid <= 0) return;
  try {
    process.kill(p.pid, signal);
  } catch {
    return;
  }
  const until = Date.now() + timeoutMs;
  while (isAlive(p.pid) && Date.now() < until) await sleep(50);
  if (isAlive(p.pid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

async function listening(ns: string, port: number): Promise<boolean> {
  const r = await exec('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { allowFailure: true });
  return r.stdout.trim() !== '';
}

/** Waits until the process listens on `port` in its namespace; fails at once when it exits. */
export async function waitListening(state: LabState, p: LabProcess, port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const ns = nodeNs(state, p.node);
  while (Date.now() < until) {
    if (!isAlive(p.pid)) throw labError(`the ${p.name} exited during start-up; its log (${p.log}) ends with:\n${tail(p.log)}`);
    if (await listening(ns, port)) return;
    await sleep(100);
  }
  throw labError(`the ${p.name} did not listen on port ${port} within ${timeoutMs / 1000} s; log ${p.log}:\n${tail(p.log)}`);
}
