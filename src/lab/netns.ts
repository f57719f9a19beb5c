// SPDX-License-Identifier: UNLICENSED
// Network-namespace primitives shared by the lab and by tests: every name carries a unique prefix so two
// runs never collide, and cleanup removes everything with that prefix even after a crash.
import { randomBytes } from 'node:crypto';
import { exec, execSync, type ExecOptions, type ExecResult } from '../shared/exec.js';

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
