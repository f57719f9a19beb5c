// SPDX-License-Identifier: UNLICENSED
// MAC learning table with named sides, aging, a hard capacity bound and EVPN-style MAC-move detection
// (RFC 7432 section 15; vendors default to 5 moves in 180 s). Time is passed in as `now` (monotonic
// ms). Keys are 48-bit MAC numbers (mac.ts).
//
// A location is a side plus a port id. The agent's sides are 'lan' and 'tunnel' (port 0 only); the
// headend uses one table per segment with sides 'session' (one port per tunnel session) and 'vtep'.
//
// Semantics (the reference-model test checks exactly these):
// - an entry is live while now - lastSeen < ageMs, or while it is frozen (now < frozenUntil);
// - learning a new key when `maxEntries` entries are live is refused ('table-full') and alarmed; nothing
//   is ever evicted to make room (RFC 9161 / the reference notes: stop learning, flood, alarm);
// - a move is a learn at a different location; the move that makes `moveThreshold` moves within
//   `moveWindowMs` freezes the entry for `freezeMs`: its location stops changing and it does not age.
import { macToString } from './mac.js';

/** Where the table reports its two alarms (the agent's MacTableAlarms; the headend passes none). */
export interface MacTableAlarms {
  raise(code: 'mac-table-full' | 'mac-move-frozen', subject: string, now: number, detail: string): void;
  clear(code: 'mac-table-full' | 'mac-move-frozen', subject: string, now: number): void;
}

export interface MacEntry<S extends string = string> {
  readonly key: number;
  readonly side: S;
  readonly port: number;
  readonly lastSeenMs: number;
  /** 0 when not frozen; otherwise the time the freeze ends. */
  readonly frozenUntilMs: number;
}

export const MAC_LEARN_RESULTS = ['new', 'refreshed', 'moved', 'frozen', 'ignored-frozen', 'table-full'] as const;
/**
 * - frozen: this move reached the threshold; the entry is now frozen (see `freezeSide`);
 * - ignored-frozen: a learn at another location while frozen; nothing changed.
 */
export type MacLearnResult = (typeof MAC_LEARN_RESULTS)[number];

export interface MacTableOptions<S extends string = string> {
  /** Default 300 000 (300 s, the Linux bridge and vxlan default). */
  ageMs?: number;
  /** Default 4096. */
  maxEntries?: number;
  /** Default 5. */
  moveThreshold?: number;
  /** Default 180 000. */
  moveWindowMs?: number;
  /** How long a flapping entry stays frozen. Default 300 000; Infinity freezes until flushed. */
  freezeMs?: number;
  /**
   * Where a flapping entry that moved between sides is pinned. A side name: that side wins when the
   * entry was there (the agent's 'lan', so a loop or a drill VM cloning a production MAC cannot steal
   * it). 'latest' (default): where the last frame came from (the headend, whose sides are peers).
   */
  freezeSide?: S | 'latest';
  /** Receives 'mac-table-full' and 'mac-move-frozen'. */
  alarms?: MacTableAlarms;
  /** A 'mac-table-full' alarm clears once live entries fall to this fraction of maxEntries. Default 0.9. */
  clearFullRatio?: number;
}

interface Entry<S extends string> {
  key: number;
  side: S;
  port: number;
  lastSeenMs: number;
  frozenUntilMs: number;
  /** Times of recent moves, oldest first; at most moveThreshold long. Allocated on the first move. */
  moves: number[] | null;
}

export class MacTable<S extends string = string> {
  readonly ageMs: number;
  readonly maxEntries: number;
  readonly moveThreshold: number;
  readonly moveWindowMs: number;
  readonly freezeMs: number;
  readonly freezeSide: S | 'latest';
  readonly #alarms: MacTableAlarms | undefined;
  readonly #clearFullAt: number;
  readonly #map = new Map<number, Entry<S>>();
  /** A lower bound of every stored entry's expiry: until then no entry can have died, so no sweep is needed. */
  #earliestExpiry = Infinity;
  #full = false;

  constructor(options: MacTableOptions<S> = {}) {
    this.ageMs = positive(options.ageMs ?? 300_000, 'ageMs');
    this.maxEntries = Math.floor(positive(options.maxEntries ?? 4096, 'maxEntries'));
    this.moveThreshold = Math.floor(positive(options.moveThreshold ?? 5, 'moveThreshold'));
    this.moveWindowMs = positive(options.moveWindowMs ?? 180_000, 'moveWindowMs');
    this.freezeMs = positive(options.freezeMs ?? 300_000, 'freezeMs');
    this.freezeSide = options.freezeSide ?? 'latest';
    this.#alarms = options.alarms;
    this.#clearFullAt = Math.floor(this.maxEntries * (options.clearFullRatio ?? 0.9));
  }

  /** Stored entries, including dead ones not yet swept. */
  get size(): number {
    return this.#map.size;
  }

  /** The live entry for `key`, or undefined. Returns the table's own object: read it, do not keep it. */
  lookup(key: number, now: number): MacEntry<S> | undefined {
    const e = this.#map.get(key);
    return e !== undefined && this.#live(e, now) ? e : undefined;
  }

  learn(key: number, side: S, port: number, now: number): MacLearnResult {
    let e = this.#map.get(key);
    if (e !== undefined && !this.#live(e, now)) {
      this.#endFreeze(e, now);
      this.#map.delete(key);
      e = undefined;
    }
    if (e === undefined) {
      if (this.#map.size >= this.maxEntries) {
        if (now >= this.#earliestExpiry) this.sweep(now);
        if (this.#map.size >= this.maxEntries) {
          this.#full = true;
          this.#alarms?.raise(
            'mac-table-full',
            '',
            now,
            `MAC table full (${this.maxEntries} entries): new MACs are not learned and their frames flood`,
          );
          return 'table-full';
        }
      }
      this.#map.set(key, { key, side, port, lastSeenMs: now, frozenUntilMs: 0, moves: null });
      this.#lowerExpiry(now + this.ageMs);
      return 'new';
    }
    if (e.frozenUntilMs !== 0 && now >= e.frozenUntilMs) this.#endFreeze(e, now);
    if (e.side === side && e.port === port) {
      e.lastSeenMs = now;
      return 'refreshed';
    }
    if (e.frozenUntilMs !== 0) return 'ignored-frozen';
    const moves = e.moves ?? (e.moves = []);
    moves.push(now);
    while (moves.length > 0 && now - (moves[0] ?? now) >= this.moveWindowMs) moves.shift();
    if (moves.length >= this.moveThreshold) {
      moves.length = 0;
      if (this.freezeSide !== 'latest' && e.side === this.freezeSide && side !== e.side) {
        // Pinned where it was: the winning side keeps it.
      } else {
        e.side = side;
        e.port = port;
      }
      e.lastSeenMs = now;
      e.frozenUntilMs = now + this.freezeMs;
      this.#lowerExpiry(Math.max(now + this.ageMs, e.frozenUntilMs));
      this.#alarms?.raise(
        'mac-move-frozen',
        macToString(key),
        now,
        `MAC moved ${this.moveThreshold} times within ${this.moveWindowMs / 1000} s (loop or duplicate MAC?); frozen on the ${e.side} side`,
      );
      return 'frozen';
    }
    e.side = side;
    e.port = port;
    e.lastSeenMs = now;
    return 'moved';
  }

  /** Removes dead entries, ends finished freezes and clears alarms whose condition ended. Returns removals. */
  sweep(now: number): number {
    let removed = 0;
    let earliest = Infinity;
    for (const e of this.#map.values()) {
      if (e.frozenUntilMs !== 0 && now >= e.frozenUntilMs) this.#endFreeze(e, now);
      if (!this.#live(e, now)) {
        this.#map.delete(e.key);
        removed++;
        continue;
      }
      const exp = Math.max(e.lastSeenMs + this.ageMs, e.frozenUntilMs);
      if (exp < earliest) earliest = exp;
    }
    this.#earliestExpiry = earliest;
    if (this.#full && this.#map.size <= this.#clearFullAt) {
      this.#full = false;
      this.#alarms?.clear('mac-table-full', '', now);
    }
    return removed;
  }

  /** Forgets every entry at one location, e.g. a tunnel session that closed. Returns removals. */
  flushPort(side: S, port: number, now: number): number {
    let removed = 0;
    for (const e of this.#map.values()) {
      if (e.side === side && e.port === port) {
        this.#endFreeze(e, now);
        this.#map.delete(e.key);
        removed++;
      }
    }
    return removed;
  }

  /** Live entries counted by a scan (tests and status; the hot path never needs it). */
  liveCount(now: number): number {
    let n = 0;
    for (const e of this.#map.values()) if (this.#live(e, now)) n++;
    return n;
  }

  /** Frozen copies of the live entries, for status output. */
  entries(now: number): readonly MacEntry<S>[] {
    const out: MacEntry<S>[] = [];
    for (const e of this.#map.values()) {
      if (this.#live(e, now)) {
        out.push(Object.freeze({ key: e.key, side: e.side, port: e.port, lastSeenMs: e.lastSeenMs, frozenUntilMs: e.frozenUntilMs }));
      }
    }
    return Object.freeze(out);
  }

  #live(e: Entry<S>, now: number): boolean {
    return now - e.lastSeenMs < this.ageMs || now < e.frozenUntilMs;
  }

  #lowerExpiry(t: number): void {
    if (t < this.#earliestExpiry) this.#earliestExpiry = t;
  }

  #endFreeze(e: Entry<S>, now: number): void {
    if (e.frozenUntilMs === 0) return;
    e.frozenUntilMs = 0;
    this.#alarms?.clear('mac-move-frozen', macToString(e.key), now);
  }
}

function positive(v: number, name: string): number {
  if (!(v > 0)) throw new RangeError(`MacTable ${name} must be > 0, got ${v}`);
  return v;
}
