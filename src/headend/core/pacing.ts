// SPDX-License-Identifier: UNLICENSED
// Admission pacing (issue 19): a fleet reconnecting at once must converge instead of queueing past its
// own connect timeout. A TLS handshake is milliseconds of CPU on the loop every session shares, so only
// `maxHandshakes` run at once, started no faster than the accept-rate bucket allows; the rest wait in a
// bounded FIFO, and a connection that would wait past `maxWaitMs` (well inside the agent's connect
// timeout, so its client is still there when its handshake starts) or finds the queue full is refused
// before any TLS work: its client backs off with full jitter. Pure: the caller hands in the time and
// starts, refuses and reports the handshakes.

export interface PacingOptions {
  /** TLS handshakes in progress at once. */
  readonly maxHandshakes: number;
  /** Connections waiting for a handshake slot; past it a new one is refused. */
  readonly maxQueued: number;
  /** A connection waiting longer than this is refused (before TLS). */
  readonly maxWaitMs: number;
  /** Handshakes started a second, sustained (token bucket rate). */
  readonly acceptPerS: number;
  /** Handshakes started in a burst above the rate (bucket depth). */
  readonly acceptBurst: number;
}

export type Offer = 'start' | 'queued' | 'refused';

export class HandshakeGate<T> {
  readonly #o: PacingOptions;
  #queue: { item: T; at: number }[] = [];
  #head = 0;
  #inProgress = 0;
  #tokens: number;
  #lastMs: number;

  constructor(o: PacingOptions, nowMs: number) {
    if (!(o.maxHandshakes >= 1) || !(o.maxQueued >= 0) || !(o.maxWaitMs >= 0) || !(o.acceptPerS > 0) || !(o.acceptBurst >= 1)) {
      throw new RangeError('pacing needs maxHandshakes >= 1, maxQueued >= 0, maxWaitMs >= 0, acceptPerS > 0, acceptBurst >= 1');
    }
    this.#o = o;
    this.#tokens = o.acceptBurst;
    this.#lastMs = nowMs;
  }

  get inProgress(): number {
    return this.#inProgress;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** A new connection: start its handshake now, queue it, or refuse it (queue full). */
  offer(nowMs: number, item: T): Offer {
    if (this.queued === 0 && this.#canStart(nowMs)) return 'start';
    if (this.queued >= this.#o.maxQueued) return 'refused';
    this.#queue.push({ item, at: nowMs });
    return 'queued';
  }

  /** A handshake ended (done, failed or its connection closed): its slot is free. */
  finished(): void {
    if (this.#inProgress > 0) this.#inProgress--;
  }

  /** The queued connections to refuse (waited too long) and to start now, oldest first. */
  pump(nowMs: number): { start: T[]; expired: T[] } {
    const start: T[] = [];
    const expired: T[] = [];
    const q = this.#queue;
    while (this.#head < q.length) {
      const e = q[this.#head] as { item: T; at: number };
      if (nowMs - e.at > this.#o.maxWaitMs) expired.push(e.item);
      else if (this.#canStart(nowMs)) start.push(e.item);
      else break;
      this.#head++;
    }
    // Compact now and then so the array does not keep every connection ever queued.
    if (this.#head > 1_024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    return { start, expired };
  }

  #canStart(nowMs: number): boolean {
    const o = this.#o;
    this.#tokens = Math.min(o.acceptBurst, this.#tokens + (Math.max(0, nowMs - this.#lastMs) * o.acceptPerS) / 1_000);
    this.#lastMs = Math.max(this.#lastMs, nowMs);
    if (this.#inProgress >= o.maxHandshakes || this.#tokens < 1) return false;
    this.#tokens -= 1;
    this.#inProgress++;
    return true;
  }
}

/**
 * The window a shutting-down headend asks its `sessions` to spread their return over (the bye's
 * `retryAfterMs`): the time its accept rate needs for all of them, at least `minMs`, at most `maxMs`.
 */
export function reconnectWindowMs(sessions: number, acceptPerS: number, minMs = 1_000, maxMs = 60_000): number {
  const need = Math.ceil((Math.max(0, sessions) / acceptPerS) * 1_000);
  return Math.min(maxMs, Math.max(minMs, need));
}
