// SPDX-License-Identifier: UNLICENSED
// Time as ports, so every core (agent, headend, tunnel protocol) runs on an injected clock and scheduler:
// main.ts passes the real ones (src/shared/system-time.ts), tests a manual one they advance by hand.

/** Monotonic milliseconds (performance.now() in production): for timeouts, RTT and ageing. */
export interface Clock {
  now(): number;
}

/** Epoch milliseconds (Date.now() in production): for certificates, logs and status timestamps. */
export interface WallClock {
  now(): number;
}

/** Stops a scheduled callback; calling it twice, or after the callback ran, does nothing. */
export type Cancel = () => void;

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): Cancel;
  setInterval(fn: () => void, ms: number): Cancel;
  /** Runs `fn` once the current turn's I/O callbacks are done: where per-turn batches are written. */
  setImmediate(fn: () => void): Cancel;
}
