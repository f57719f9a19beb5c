// SPDX-License-Identifier: UNLICENSED
// Network-namespace primitives shared by the lab and by tests: every name carries a unique prefix so two
// runs never collide, and cleanup removes everything with that prefix even after a crash.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { ConnectorError } from '../../shared/errors.js';
import { exec, execSync, type ExecOptions, type ExecResult } from '../../shared/exec.js';

/** A short unique prefix: interface names are limited to 15 bytes, so keep it at 6. */
export function uniquePrefix(stem = 'ck'): string {
  return stem + randomBytes(2).toString('hex');
}

export async function listNetns(): Promise<string[]> {
  const r = await exec('ip', ['netns', 'list'], { allowFailure: true });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

export function nsExec(ns: string, cmd: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  return exec('ip', ['netns', 'exec', ns, cmd, ...args], options);
}

/** `ip -n NS ...` for link/addr/route work inside a namespace. */
export function ipIn(ns: string, ...args: string[]): Promise<ExecResult> {
  return exec('ip', ['-n', ns, ...args]);
}

export async function addNetns(ns: string): Promise<void> {
  await exec('ip', ['netns', 'add', ns]);
  await ipIn(ns, 'link', 'set', 'lo', 'up');
}

/** Kills every process inside the namespaces with this prefix, then deletes them. Safe to call twice. */
export function removeNetnsWithPrefix(prefix: string): string[] {
  const names = execSync('ip', ['netns', 'list'], true)
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
  for (const ns of names) {
    const pids = execSync('ip', ['netns', 'pids', ns], true).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    execSync('ip', ['netns', 'del', ns], true);
  }
  return names;
}

export function netnsExists(ns: string): boolean {
  return execSync('ip', ['netns', 'list'], true)
    .stdout.split('\n')
    .some((l) => l.split(' ')[0] === ns);
}

/** Process ids running inside a namespace (empty when it does not exist). */
export function netnsPids(ns: string): number[] {
  return execSync('ip', ['netns', 'pids', ns], true).stdout.split(/\s+/).filter(Boolean).map(Number);
}

export interface VethEnd {
  ns: string;
  ifname: string;
  mac?: string;
}

/** A veth pair created directly inside two namespaces, never in the caller's (root) namespace. */
export async function addVeth(a: VethEnd, b: VethEnd, mtu?: number): Promise<void> {
  const end = (e: VethEnd): string[] => [e.ifname, ...(e.mac ? ['address', e.mac] : []), ...(mtu ? ['mtu', String(mtu)] : [])];
  await exec('ip', ['-n', a.ns, 'link', 'add', ...end(a), 'type', 'veth', 'peer', 'name', ...end(b), 'netns', b.ns]);
}

/** Sets a sysctl inside a namespace; `optional` ones (e.g. br_netfilter keys) may not exist. */
export async function sysctlIn(ns: string, key: string, value: string, optional = false): Promise<void> {
  await nsExec(ns, 'sysctl', ['-qw', `${key}=${value}`], { allowFailure: optional });
}

export interface SpawnInNetnsOptions {
  /** stdout and stderr are appended to this file. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Starts a long-running program inside a namespace, detached from the caller so it outlives `lab up`.
 * `ip netns exec` execs the program in place, so the returned pid is the program's own.
 */
export function spawnInNetns(ns: string, cmd: string, args: readonly string[], o: SpawnInNetnsOptions): number {
  const fd = openSync(o.logFile, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: o.env ?? process.env,
      ...(o.cwd ? { cwd: o.cwd } : {}),
    });
    child.on('error', () => {
      // reported by the caller, which checks that the pid is alive
    });
    child.unref();
    if (child.pid === undefined) throw new ConnectorError('CK_ERR_LAB', `cannot start ${cmd} in ${ns}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs CMD in a namespace with the caller's terminal; resolves with its exit code. */
export function execInNetnsInteractive(ns: string, cmd: readonly string[]): Promise<number> {
  return new Promise((res) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit' });
    child.on('error', (e) => {
      process.stderr.write(`connector lab exec: ${e.message}\n`);
      res(1);
    });
    child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
}
