// SPDX-License-Identifier: UNLICENSED
// Reconnect delays: exponential growth from initialMs to maxMs with multiplicative jitter, so a fleet
// that lost the same headend does not come back in lock-step. Pure: the random number comes in.

export interface BackoffOptions {
  /** Delay before the first retry, milliseconds. */
  initialMs: number;
  /** Ceiling of the delay, milliseconds. */
  maxMs: number;
  /** 0..1: the fraction of the delay that is randomised (0 = none, 1 = anywhere in 0..delay). */
  jitter: number;
}

export function checkBackoffOptions(o: BackoffOptions): void {
  if (!(o.initialMs > 0) || !(o.maxMs >= o.initialMs)) {
    throw new RangeError(`backoff needs 0 < initialMs <= maxMs, got ${o.initialMs}..${o.maxMs}`);
  }
  if (!(o.jitter >= 0 && o.jitter <= 1)) throw new RangeError(`backoff jitter must be 0..1, got ${o.jitter}`);
}

/**
 * Delay before retry number `attempt` (0 = first retry): min(maxMs, initialMs * 2^attempt), of which
 * the `jitter` fraction is scaled by `random` (0 <= random < 1).
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: number): number {
  const base = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  const r = Math.min(Math.max(random, 0), 1);
  return Math.round(base * (1 - o.jitter + o.jitter * r));
}

/**
 * The delay after a session the headend ended with a `retryAfterMs` window (its bye or error): full
 * jitter over the larger of that window and this client's own backoff for `attempt`, so the hint can
 * widen the spread but never shorten the client's own backoff. No hint: backoffDelay.
 */
export function hintedDelay(attempt: number, o: BackoffOptions, retryAfterMs: number | null, random: number): number {
  if (retryAfterMs === null) return backoffDelay(attempt, o, random);
  const base = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  const r = Math.min(Math.max(random, 0), 1);
  return Math.round(Math.max(base, retryAfterMs) * r);
}
