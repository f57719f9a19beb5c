// SPDX-License-Identifier: UNLICENSED
// Slow-core mode for the lab and the bench: a process confined to a fraction of one core through the
// kernel's CPU bandwidth control (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` where the cpu controller
// is still on the v1 hierarchy, as on this test box). A short period (10 ms by default) makes the
// process run slower rather than in long bursts and pauses, which is closer to a slow core; the pauses
// that remain (up to period x (1 - fraction)) are the late event-loop turns a busy appliance has.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorError, errorMessage } from '../../shared/errors.js';

const V2_ROOT = '/sys/fs/cgroup';
const V2_UNIFIED = '/sys/fs/cgroup/unified';
const V1_CPU = '/sys/fs/cgroup/cpu';

export interface CpuGroup {
  /** The cgroup directory. */
  readonly path: string;
  readonly version: 1 | 2;
  /** Moves a process (all its threads) into the group. */
  add(pid: number): void;
  /**
   * Moves one thread into the group, so that each thread of a process can have a slow core of its own
   * (the cgroup v1 hierarchy only: v2 would need a threaded subtree, not built).
   */
  addThread(tid: number): void;
  /** Times the kernel throttled the group, and for how long in total (ms). */
  throttled(): { periods: number; throttledPeriods: number; throttledMs: number };
}

function cpuV2Root(): string | null {
  for (const root of [V2_ROOT, V2_UNIFIED]) {
    try {
      const ctl = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
      if (ctl.includes('cpu')) return root;
    } catch {
      // not a v2 mount, or no such file
    }
  }
  return null;
}

const limitError = (message: string, cause?: unknown): ConnectorError =>
  new ConnectorError('CK_ERR_LAB', message, cause === undefined ? undefined : { cause });

/**
 * Creates (or reuses) the cgroup `name` limited to `fraction` of one core per `periodUs`. Needs root and
 * a cpu controller (v2 `cpu` in cgroup.controllers, or the v1 cpu hierarchy at /sys/fs/cgroup/cpu).
 */
export function limitCpu(name: string, fraction: number, periodUs = 10_000): CpuGroup {
  if (!(fraction > 0 && fraction <= 1)) throw limitError(`slow-core fraction must be in (0, 1], got ${fraction}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw limitError(`cgroup name "${name}" must be letters, digits, _ . -`);
  const quotaUs = Math.max(1_000, Math.round(fraction * periodUs));
  const v2 = cpuV2Root();
  try {
    if (v2 !== null) {
      // The controller must be enabled for the root's children first.
      const sub = join(v2, 'cgroup.subtree_control');
      if (!readFileSync(sub, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(sub, '+cpu');
      const path = join(v2, name);
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'cpu.max'), `${quotaUs} ${periodUs}`);
      return group(path, 2);
    }
    if (existsSync(join(V1_CPU, 'cpu.cfs_quota_us'))) {
      const path = join(V1_CPU, name);
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'cpu.cfs_period_us'), String(periodUs));
      writeFileSync(join(path, 'cpu.cfs_quota_us'), String(quotaUs));
      return group(path, 1);
    }
  } catch (e) {
    throw limitError(`cannot set up the slow-core cgroup ${name}: ${errorMessage(e)} (needs root and a writable cgroup fs)`, e);
  }
  throw limitError('slow-core mode needs the kernel cpu controller (cgroup v2 "cpu" or the v1 hierarchy at /sys/fs/cgroup/cpu)');
}

function group(path: string, version: 1 | 2): CpuGroup {
  return {
    path,
    version,
    add(pid) {
      writeFileSync(join(path, 'cgroup.procs'), String(pid));
    },
    addThread(tid) {
      if (version !== 1) throw limitError('a slow core per thread needs the cgroup v1 cpu hierarchy (v2 threaded subtrees are not built)');
      writeFileSync(join(path, 'tasks'), String(tid));
    },
    throttled() {
      const stat = Object.fromEntries(
        readFileSync(join(path, 'cpu.stat'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.split(' ') as [string, string])
          .map(([k, v]) => [k, Number(v)]),
      );
      const ms = version === 2 ? (stat['throttled_usec'] ?? 0) / 1_000 : (stat['throttled_time'] ?? 0) / 1e6;
      return { periods: stat['nr_periods'] ?? 0, throttledPeriods: stat['nr_throttled'] ?? 0, throttledMs: ms };
    },
  };
}

/** Removes the slow-core cgroups whose names start with `prefix`, moving what still runs in them out. */
export function removeCpuGroups(prefix: string): string[] {
  const removed: string[] = [];
  for (const root of [cpuV2Root(), existsSync(V1_CPU) ? V1_CPU : null]) {
    if (root === null) continue;
    let names: string[];
    try {
      names = readdirSync(root).filter((n) => n.startsWith(prefix));
    } catch {
      continue;
    }
    for (const n of names) {
      const path = join(root, n);
      try {
        const pids = readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
        for (const pid of pids) writeFileSync(join(root, 'cgroup.procs'), pid);
        rmdirSync(path);
        removed.push(path);
      } catch {
        // a process exiting right now, or a group that is not ours to remove: left for the next run
      }
    }
  }
  return removed;
}
