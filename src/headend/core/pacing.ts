// SPDX-License-Identifier: UNLICENSED
// Admission pacing (issue 19): a fleet reconnecting at once must converge instead of queueing past its
// own connect timeout. A TLS handshake is milliseconds of CPU on the loop every session shares, so only
// `maxHandshakes` run at once, started no faster than the accept-rate bucket allows; the rest wait in a
// bounded FIFO, and a connection that would wait past `maxWaitMs` (well inside the agent's connect
// timeout, so its client is still there when its handshake starts) or finds the queue full is refused
// before any TLS work: its client backs off with full jitter. The queue is fair across source addresses
// (below). Pure: the caller hands in the time and starts, refuses and reports the handshakes.

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

interface SourceQueue<T> {
  items: { item: T; at: number }[];
  head: number;
}

/** Waiting entries are checked for expiry this often at most (and always before one is started). */
const EXPIRY_SCAN_MS = 100;

/**
 * The waiting connections are queued per source address and started round-robin across sources, like
 * flow queuing for admission: thousands of connections from a few addresses (a flood of half-open
 * handshakes, or one NAT's worth of units) cannot make a newcomer from another address wait behind all
 * of them. From one source they start in arrival order. When the queue is full, a newcomer from a source
 * with fewer waiting takes the place of the newest entry of the source with the most.
 */
export class HandshakeGate<T> {
  readonly #o: PacingOptions;
  readonly #queues = new Map<string, SourceQueue<T>>();
  /** Sources with connections waiting, in round-robin order. */
  #ring: string[] = [];
  #next = 0;
  #queued = 0;
  #evicted: T[] = [];
  #lastScanMs = -Infinity;
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
    return this.#queued;
  }

  /** A new connection from `source`: start its handshake now, queue it, or refuse it (queue full). */
  offer(nowMs: number, item: T, source = ''): Offer {
    if (this.#queued === 0 && this.#canStart(nowMs)) return 'start';
    if (this.#queued >= this.#o.maxQueued && !this.#evictForFairness(source)) return 'refused';
    let q = this.#queues.get(source);
    if (!q) {
      q = { items: [], head: 0 };
      this.#queues.set(source, q);
      this.#ring.push(source);
    }
    q.items.push({ item, at: nowMs });
    this.#queued++;
    return 'queued';
  }

  /** A handshake ended (done, failed or its connection closed): its slot is free. */
  finished(): void {
    if (this.#inProgress > 0) this.#inProgress--;
  }

  /**
   * The queued connections to refuse (`expired`: waited too long; `evicted`: gave their place to a
   * source with fewer waiting) and to start now, round-robin across sources.
   */
  pump(nowMs: number): { start: T[]; expired: T[]; evicted: T[] } {
    const start: T[] = [];
    const expired: T[] = [];
    const evicted = this.#evicted;
    this.#evicted = [];
    if (nowMs - this.#lastScanMs >= EXPIRY_SCAN_MS) {
      this.#lastScanMs = nowMs;
      for (const [source, q] of this.#queues) {
        this.#dropExpired(q, nowMs, expired);
        if (q.head >= q.items.length) this.#forget(source);
      }
    }
    while (this.#queued > 0) {
      const source = this.#ring[this.#next] as string;
      const q = this.#queues.get(source) as SourceQueue<T>;
      this.#dropExpired(q, nowMs, expired);
      if (q.head >= q.items.length) {
        this.#forget(source);
        continue;
      }
      if (!this.#canStart(nowMs)) break;
      start.push((q.items[q.head++] as { item: T }).item);
      this.#queued--;
      if (q.head >= q.items.length) this.#forget(source);
      else this.#next = (this.#next + 1) % this.#ring.length;
    }
    return { start, expired, evicted };
  }

  #dropExpired(q: SourceQueue<T>, nowMs: number, into: T[]): void {
    while (q.head < q.items.length && nowMs - (q.items[q.head] as { at: number }).at > this.#o.maxWaitMs) {
      into.push((q.items[q.head++] as { item: T }).item);
      this.#queued--;
    }
    // Compact now and then so the array does not keep every connection ever queued.
    if (q.head > 1_024 && q.head * 2 > q.items.length) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
  }

  #forget(source: string): void {
    this.#queues.delete(source);
    const i = this.#ring.indexOf(source);
    if (i < 0) return;
    this.#ring.splice(i, 1);
    if (this.#next > i) this.#next--;
    if (this.#next >= this.#ring.length) this.#next = 0;
  }

  /** The queue is full: the source with the most waiting gives up its newest entry, if it has more than `source` would. */
  #evictForFairness(source: string): boolean {
    const mine = this.#queues.get(source);
    const mineLen = mine ? mine.items.length - mine.head : 0;
    let fattest: SourceQueue<T> | undefined;
    let fattestLen = 0;
    for (const q of this.#queues.values()) {
      const n = q.items.length - q.head;
      if (n > fattestLen) {
        fattest = q;
        fattestLen = n;
      }
    }
    if (!fattest || fattestLen <= mineLen + 1) return false;
    this.#evicted.push((fattest.items.pop() as { item: T }).item);
    this.#queued--;
    return true;
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

/**
 * One worker's share of the listener's limits: they are the headend's totals (an operator sizes one
 * headend, not its processes), split evenly and rounded up among `workers` processes that accept from one
 * socket. On a box whose load generator shares the cores, twice the default rate outran the clients'
 * own handshakes and nothing converged.
 */
export function workerShare<T extends PacingOptions & { maxConnections: number; maxPerSource: number }>(listen: T, workers: number): T {
  if (workers <= 1) return listen;
  const part = (n: number): number => Math.max(1, Math.ceil(n / workers));
  return {
    ...listen,
    maxConnections: part(listen.maxConnections),
    maxPerSource: part(listen.maxPerSource),
    maxHandshakes: part(listen.maxHandshakes),
    maxQueued: listen.maxQueued === 0 ? 0 : part(listen.maxQueued),
    acceptPerS: part(listen.acceptPerS),
    acceptBurst: part(listen.acceptBurst),
  };
}
