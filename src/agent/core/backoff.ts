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

/**
 * Where and when to reconnect after a session that was up ended. The lost headend most likely died (or
 * its host did): with another in the list that one is tried at once, because the jitter protects a
 * headend from its own fleet coming back together, and the other headend's admission pacing already
 * spreads a fleet's arrival. Alone in the list, or when the headend asked for a retry-after window (it
 * is alive and overloaded or draining), the same headend after the jittered delay of a first retry.
 */
export function afterLoss(
  index: number,
  headends: number,
  o: BackoffOptions,
  retryAfterMs: number | null,
  random: number,
): { index: number; delayMs: number } {
  if (headends > 1 && retryAfterMs === null) return { index: (index + 1) % headends, delayMs: 0 };
  return { index, delayMs: hintedDelay(0, o, retryAfterMs, random) };
}
