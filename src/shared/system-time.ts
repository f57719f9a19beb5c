// SPDX-License-Identifier: UNLICENSED
// The real implementations of the time ports (src/shared/ports.ts), picked by each program's main.ts.
import type { Clock, Scheduler, WallClock } from './ports.js';

export const monotonicClock: Clock = { now: () => performance.now() };

export const systemWallClock: WallClock = { now: () => Date.now() };

export const systemScheduler: Scheduler = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  setImmediate(fn) {
    const t = setImmediate(fn);
    return () => clearImmediate(t);
  },
};
