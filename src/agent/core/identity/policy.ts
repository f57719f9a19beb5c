// SPDX-License-Identifier: UNLICENSED
// The timing decisions of the device identity, as pure functions: when the wall clock can be trusted,
// when a certificate is due for renewal, and how long to wait after a failed attempt.
import type { WallClock } from '../../../shared/ports.js';

/** The wall clock plus a way to wait on it, so tests can move time for enrollment and renewal. */
export interface IdentityClock extends WallClock {
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Fallback floor when config gives no min_time: no Connector image was built before this (2026-01-01). */
export const DEFAULT_MIN_TIME_S = 1_767_225_600;

export type ClockCheck = { ok: true } | { ok: false; reason: string };

/**
 * Is the wall clock plausible, i.e. not earlier than the image build time? The R3S has no battery-backed
 * RTC: until sysntpd syncs, the clock may read 1970 or the last shutdown.
 */
export function checkClock(nowMs: number, minTimeS: number): ClockCheck {
  if (nowMs >= minTimeS * 1000) return { ok: true };
  return {
    ok: false,
    reason: `system clock ${new Date(nowMs).toISOString()} is earlier than the image build time ${new Date(minTimeS * 1000).toISOString()}; waiting for time sync (sysntpd)`,
  };
}

/** RFC-free policy (step-ca's default): renew once two thirds of the lifetime have passed. */
export function renewAtOf(id: { notBefore: Date; notAfter: Date }): Date {
  const nb = id.notBefore.getTime();
  return new Date(nb + Math.floor(((id.notAfter.getTime() - nb) * 2) / 3));
}

/**
 * When to renew a certificate that arrived at `receivedMs` (undefined for one found on disk). A CA that
 * backdates notBefore by more than a short lifetime's third would otherwise put the renewal time in the
 * past on arrival and renew in a tight loop: count two thirds of what is left from arrival instead.
 */
export function renewalDueMs(id: { notBefore: Date; notAfter: Date }, receivedMs: number | undefined): number {
  const byCert = renewAtOf(id).getTime();
  if (receivedMs === undefined) return byCert;
  return Math.max(byCert, receivedMs + Math.floor(((id.notAfter.getTime() - receivedMs) * 2) / 3));
}

export interface BackoffSettings {
  /** Backoff between failed attempts, seconds: first delay, cap. Default 5, 300. */
  backoffS?: { initial: number; max: number };
  /** In [0,1); default Math.random. Jitter keeps a rebooted fleet from enrolling in lockstep. */
  random?: () => number;
}

export const DEFAULT_BACKOFF_S = { initial: 5, max: 300 } as const;

/** Delay before attempt `attempt + 1`; an EST Retry-After wins, clamped to 1 s..1 h. */
export function backoffDelayMs(o: BackoffSettings, attempt: number, retryAfterS?: number): number {
  if (retryAfterS !== undefined) return Math.min(Math.max(retryAfterS, 1), 3600) * 1000;
  const b = o.backoffS ?? DEFAULT_BACKOFF_S;
  const base = Math.min(b.max, b.initial * 2 ** Math.min(attempt, 20));
  return Math.round(base * 1000 * (0.5 + (o.random ?? Math.random)() / 2));
}

/** The earliest plausible time for enrollment: the configured floor, or the factory block's creation. */
export function enrollmentFloorS(minTimeS: number | undefined, factoryCreatedAt: string): number {
  return Math.max(minTimeS || DEFAULT_MIN_TIME_S, Math.floor(Date.parse(factoryCreatedAt) / 1000) || 0);
}
