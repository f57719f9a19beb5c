// SPDX-License-Identifier: UNLICENSED
// Wall-clock time for certificate validity, injected everywhere in identity code so tests can move it.
// The R3S has no battery-backed RTC: until sysntpd syncs, the clock may read 1970 or the last shutdown.
import { setTimeout as delay } from 'node:timers/promises';

export interface WallClock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: WallClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
};

/** Fallback floor when config gives no min_time: no Connector image was built before this (2026-01-01). */
export const DEFAULT_MIN_TIME_S = 1_767_225_600;

export type ClockCheck = { ok: true } | { ok: false; reason: string };

/** Pure: is the wall clock plausible, i.e. not earlier than the image build time? */
export function checkClock(nowMs: number, minTimeS: number): ClockCheck {
  if (nowMs >= minTimeS * 1000) return { ok: true };
  return {
    ok: false,
    reason: `system clock ${new Date(nowMs).toISOString()} is earlier than the image build time ${new Date(minTimeS * 1000).toISOString()}; waiting for time sync (sysntpd)`,
  };
}
