// SPDX-License-Identifier: UNLICENSED
// Slow-core mode with several cores (`--slow-cores`): the device has four slow cores, not one. Each thread
// of the agent that carries frames gets a slow core of its own (a cgroup of one thread, cpu.max at the
// slow-core fraction): the event loop one, each datagram lane's worker (named `ck-lane` by the addon) one,
// and every other thread of the process (V8's helpers, libuv's pool) one between them. Threads are placed
// as they appear: a lane's worker starts once its session is up. The headend is the datacentre's and not
// what is measured: its process gets four slow cores' worth (at most one core), so that with or without
// lanes it is not the limit the agent's cores are compared against.
import { readdirSync, readFileSync } from 'node:fs';
import { limitCpu } from '../../src/lab/adapters/cpu-limit.js';

const PLACE_MS = 200;

export interface SlowCores {
  /** The agent's threads by the core they were given: loop, ck-lane (one core each), other (one between them). */
  placed(): Record<string, number>;
  stop(): void;
}

export function slowCores(prefix: string, procs: { agent?: number; headend?: number }, fraction: number): SlowCores {
  if (procs.headend !== undefined) limitCpu(`${prefix}-headend`, Math.min(1, fraction * 4)).add(procs.headend);
  const roles = new Map<number, string>();
  const placed = (): Record<string, number> => {
    const n: Record<string, number> = {};
    for (const r of roles.values()) n[r] = (n[r] ?? 0) + 1;
    return n;
  };
  const agent = procs.agent;
  if (agent === undefined) return { placed, stop: () => {} };
  const loop = limitCpu(`${prefix}-agent-loop`, fraction);
  const other = limitCpu(`${prefix}-agent-other`, fraction);
  let lanes = 0;
  const place = (): void => {
    let tids: number[];
    try {
      tids = readdirSync(`/proc/${agent}/task`).map(Number);
    } catch {
      return; // the agent is gone
    }
    for (const tid of tids) {
      const was = roles.get(tid);
      if (was === 'loop' || was === 'ck-lane') continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${agent}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        continue; // a thread that just ended
      }
      // A lane's worker names itself a moment after it starts: until then it is one of the others.
      const role = tid === agent ? 'loop' : comm === 'ck-lane' ? 'ck-lane' : 'other';
      if (role === was) continue;
      const group = role === 'loop' ? loop : role === 'other' ? other : limitCpu(`${prefix}-agent-lane${lanes++}`, fraction);
      try {
        group.addThread(tid);
        roles.set(tid, role);
      } catch {
        // a thread that just ended
      }
    }
  };
  place();
  const timer = setInterval(place, PLACE_MS);
  timer.unref();
  return { placed, stop: () => clearInterval(timer) };
}
