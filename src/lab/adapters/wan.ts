// SPDX-License-Identifier: UNLICENSED
// Starts and stops the WAN delay line (native/wan/wan.c, the stand-in for `tc netem`, which this kernel
// lacks) in a namespace that holds two interfaces, and reads its stats. A test and bench tool only.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ConnectorError, errorMessage } from '../../shared/errors.js';
import { wanArgs, type WanProfile } from '../core/wan.js';
import { isAlive, sysctlIn, spawnInNetns } from './netns.js';
import { tail } from './processes.js';
import type { LabProcess } from './state.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SOURCE = join(ROOT, 'native/wan/wan.c');
const BINARY = join(ROOT, 'build/wan/wan');

/** Per-direction stats as the delay line writes them (a subset; docs/lab.md lists every field). */
export interface WanDirectionStats {
  rx_packets: number;
  tx_packets: number;
  rx_segments: number;
  tx_segments: number;
  drops: { loss: number; queue: number; memory: number; kernel: number; rx_error: number; tx_error: number };
  queue_max_bytes: number;
  late_max_us: number;
}

export interface WanStats {
  uptime_s: number;
  cpu_user_s: number;
  cpu_sys_s: number;
  seed: number;
  a2b: WanDirectionStats;
  b2a: WanDirectionStats;
}

export interface WanLine {
  pid: number;
  statsPath: string;
  /** Asks the line for fresh stats (SIGUSR1) and reads them. */
  stats(): Promise<WanStats>;
  /** SIGTERM; resolves with the final stats once the line has exited. */
  stop(): Promise<WanStats | undefined>;
}

/**
 * The delay line's binary; `npm run build` makes it, and this builds it when missing or older than its
 * source, so a test or `lab up` in a fresh checkout works (needs cc, which node-gyp needs anyway).
 */
export function wanBinary(): string {
  const fresh = existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs;
  if (!fresh) {
    mkdirSync(dirname(BINARY), { recursive: true });
    try {
      execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE, '-lm'], { stdio: 'pipe' });
    } catch (e) {
      throw new ConnectorError('CK_ERR_LAB', `cannot build the WAN delay line (${SOURCE}): ${errorMessage(e)}`);
    }
  }
  return BINARY;
}

/** The two interfaces must be up and carry no addresses; the namespace is a wire, not a host. */
export async function prepareWanNs(ns: string): Promise<void> {
  await sysctlIn(ns, 'net.ipv6.conf.all.disable_ipv6', '1', true);
  await sysctlIn(ns, 'net.ipv6.conf.default.disable_ipv6', '1', true);
}

/**
 * Removes the old stats so that the next file there is the answer to this request. (Comparing mtimes does
 * not work: the kernel stamps files with a coarse clock that can lag Date.now() by a tick.)
 */
function forgetStats(path: string): void {
  rmSync(path, { force: true });
}

function loadStats(path: string): WanStats | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as WanStats;
  } catch {
    return undefined; // not written yet; the line renames a whole document into place
  }
}

async function readStats(path: string, pid: number, timeoutMs = 3_000): Promise<WanStats> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = loadStats(path);
    if (s) return s;
    if (Date.now() > until || !isAlive(pid)) throw new ConnectorError('CK_ERR_LAB', `the WAN delay line wrote no stats to ${path}`);
    await sleep(20);
  }
}

/** Starts the line between ifA and ifB in `ns`; fails with its log when it does not come up. */
export async function startWan(
  ns: string,
  ifA: string,
  ifB: string,
  profile: WanProfile,
  o: { statsPath: string; logFile: string; seed?: number },
): Promise<WanLine> {
  const bin = wanBinary();
  const pid = spawnInNetns(ns, bin, wanArgs(profile, ifA, ifB, o.statsPath, o.seed), { logFile: o.logFile });
  const until = Date.now() + 5_000;
  while (!tail(o.logFile, 5).includes('wan: ready')) {
    if (!isAlive(pid) || Date.now() > until) {
      throw new ConnectorError('CK_ERR_LAB', `the WAN delay line did not start in ${ns}; its log ends with:\n${tail(o.logFile)}`);
    }
    await sleep(20);
  }
  return {
    pid,
    statsPath: o.statsPath,
    async stats() {
      forgetStats(o.statsPath);
      process.kill(pid, 'SIGUSR1');
      return readStats(o.statsPath, pid);
    },
    async stop() {
      forgetStats(o.statsPath);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return undefined;
      }
      const end = Date.now() + 3_000;
      while (isAlive(pid) && Date.now() < end) await sleep(20);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      return loadStats(o.statsPath);
    },
  };
}

/** The lab's delay line as a lab process (so `lab restart wan`, `lab status` and `lab down` know it). */
export function labWanProcess(dir: string, wan: { node: string; ifIsp: string; ifDc: string }, profile: WanProfile): LabProcess {
  const wanDir = join(dir, 'wan');
  mkdirSync(wanDir, { recursive: true });
  return {
    name: 'wan',
    node: wan.node,
    pid: 0,
    cmd: [wanBinary(), ...wanArgs(profile, wan.ifIsp, wan.ifDc, join(wanDir, 'stats.json'))],
    cwd: dir,
    log: join(wanDir, 'wan.log'),
  };
}

/** Waits until the lab's delay line says it is forwarding; fails with its log when it exits. */
export async function waitWanReady(p: LabProcess, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!tail(p.log, 5).includes('wan: ready')) {
    if (!isAlive(p.pid) || Date.now() > until) {
      throw new ConnectorError('CK_ERR_LAB', `the WAN delay line did not start; its log (${p.log}) ends with:\n${tail(p.log)}`);
    }
    await sleep(20);
  }
}
