// SPDX-License-Identifier: UNLICENSED
// IP -> MAC bindings learned by snooping ARP, GARP, NS/NA (and optionally DHCP) on both sides, in the
// spirit of the RFC 9161 proxy table. Time is passed in (monotonic ms).
//
// A binding keeps one claim per side (the latest MAC that side announced for the IP, with the interval
// it was seen in) and which side holds the IP now ("current"). That is what lets the table tell apart:
// - a move: the other side starts claiming the IP after the old holder went quiet (DR failover: the
//   recovered VM sends its GARP after the physical server died). The agent re-originates announcements
//   so the side that has to learn does so quickly;
// - DR split brain: both sides claim the IP with different MACs and their claims overlap in time, both
//   seen within `splitBrainWindowMs` (the physical server came back while its recovered VM still runs, or
//   a drill VM took a production address). That raises an alarm and never counts as a move, so the
//   Connector does not help either side steal the address from the other.
// The overlap rule matters: at failover the old claim is still recent, but it ended before the new one
// began, so it is not a split brain. It is not a move yet either: a tunnel claim for an IP the LAN holds
// is 'contested' (production keeps the address; a drill VM booting with a production address must not
// take it over) while the LAN holder was seen within the window. Past the window the LAN holder is not
// believed gone on silence alone, because the Connector only sees broadcast ARP: the result is 'verify'
// and the caller probes the holder (a unicast ARP probe / DAD NS). An answer makes it a split brain; no
// answer within `verifyMs` lets the next tunnel claim move the IP.
import type { AlarmSet } from './alarms.js';
import type { FrameSide } from './side.js';
import { macToString } from '../../../shared/l2/mac.js';
import { ipv4ToString } from './ipv4.js';
import { ipv6ToString } from './nd.js';

export const NEIGHBOUR_SOURCES = ['arp', 'garp', 'nd', 'dhcp', 'static'] as const;
export type NeighbourSource = (typeof NEIGHBOUR_SOURCES)[number];

/** IPv4 bindings are keyed by the u32 address, IPv6 ones by 32 lower-case hex digits (ipv6Key). */
export type NeighbourKey = number | string;

export function ipv6Key(buf: Uint8Array, off = 0): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, 16).toString('hex');
}

export function neighbourKeyToString(key: NeighbourKey): string {
  return typeof key === 'number' ? ipv4ToString(key) : ipv6ToString(Buffer.from(key, 'hex'));
}

export interface NeighbourClaim {
  readonly mac: number;
  /** Start of the current run of sightings of this MAC on this side. */
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly source: NeighbourSource;
  /** The IPv6 router flag from the latest NA (used when proxying an NA). */
  readonly router: boolean;
}

export interface NeighbourBinding {
  readonly key: NeighbourKey;
  readonly lan: NeighbourClaim | null;
  readonly tunnel: NeighbourClaim | null;
  /** The side holding the IP: the side of the latest new claim or move. */
  readonly current: FrameSide;
  readonly isStatic: boolean;
}

export const NEIGHBOUR_OBSERVE_RESULTS = [
  'new',
  'refreshed',
  'moved',
  'contested',
  'verify',
  'split-brain',
  'static-conflict',
  'table-full',
] as const;
/**
 * - contested: the tunnel side claims an IP the LAN side still holds. Not a move (yet): the LAN is
 *   production and keeps the IP. If the LAN holder speaks while the tunnel claim is fresh it becomes a
 *   split brain; if it stays quiet, a later tunnel claim is a move.
 * - verify: contested, and the LAN holder has been quiet for the split-brain window, which proves little
 *   (the Connector only sees the LAN's broadcast ARP, not the unicast refreshes between hosts). The caller
 *   should probe the holder now (Reoriginator.scheduleVerify); an answer within `verifyMs` makes it a
 *   split brain, silence makes the next tunnel claim a move.
 */
export type NeighbourObserveResult = (typeof NEIGHBOUR_OBSERVE_RESULTS)[number];

export interface NeighbourTableOptions {
  /** A claim is forgotten this long after it was last seen. Default 600 000 (Nokia's proxy-arp age-time). */
  ageMs?: number;
  /** Default 4096 bindings (IPv4 and IPv6 together). */
  maxEntries?: number;
  /** Both claims must be seen within this window to be a split brain. Default 60 000. */
  splitBrainWindowMs?: number;
  /** How long a probed LAN holder has to answer before a tunnel claim may take its IP. Default 3000; 0 = no probing. */
  verifyMs?: number;
  /** Receives 'neighbour-table-full', 'split-brain', 'neighbour-static-conflict'. */
  alarms?: AlarmSet;
}

interface Claim {
  mac: number;
  firstSeenMs: number;
  lastSeenMs: number;
  source: NeighbourSource;
  router: boolean;
}

interface Binding {
  key: NeighbourKey;
  lan: Claim | null;
  tunnel: Claim | null;
  current: FrameSide;
  isStatic: boolean;
  /** Whether a split-brain alarm is raised for this binding (for clearing on transition). */
  split: boolean;
  /** End of the current verification of the LAN holder, 0 when none was started. */
  verifyUntil: number;
}

export class NeighbourTable {
  readonly ageMs: number;
  readonly maxEntries: number;
  readonly splitBrainWindowMs: number;
  readonly verifyMs: number;
  readonly #alarms: AlarmSet | undefined;
  readonly #map = new Map<NeighbourKey, Binding>();
  #earliestExpiry = Infinity;
  #full = false;

  constructor(options: NeighbourTableOptions = {}) {
    this.ageMs = positive(options.ageMs ?? 600_000, 'ageMs');
    this.maxEntries = Math.floor(positive(options.maxEntries ?? 4096, 'maxEntries'));
    this.splitBrainWindowMs = positive(options.splitBrainWindowMs ?? 60_000, 'splitBrainWindowMs');
    this.verifyMs = Math.max(0, options.verifyMs ?? 3000);
    this.#alarms = options.alarms;
  }

  get size(): number {
    return this.#map.size;
  }

  /** A static binding (e.g. the gateway): never ages, never moves, conflicting claims are alarmed. */
  addStatic(key: NeighbourKey, mac: number, side: FrameSide, router = false): void {
    const claim: Claim = { mac, firstSeenMs: -Infinity, lastSeenMs: Infinity, source: 'static', router };
    this.#map.set(key, {
      key,
      lan: side === 'lan' ? claim : null,
      tunnel: side === 'tunnel' ? claim : null,
      current: side,
      isStatic: true,
      split: false,
      verifyUntil: 0,
    });
  }

  /** Records that `side` announced `key` at `mac` now. */
  observe(key: NeighbourKey, mac: number, side: FrameSide, source: NeighbourSource, now: number, router = false): NeighbourObserveResult {
    let b = this.#map.get(key);
    if (b !== undefined && !this.#live(b, now)) {
      this.#drop(b, now);
      b = undefined;
    }
    if (b === undefined) {
      if (this.#map.size >= this.maxEntries) {
        if (now >= this.#earliestExpiry) this.sweep(now);
        if (this.#map.size >= this.maxEntries) {
          this.#full = true;
          this.#alarms?.raise(
            'neighbour-table-full',
            '',
            now,
            `neighbour table full (${this.maxEntries} bindings): new IPs are not learned or proxied`,
          );
          return 'table-full';
        }
      }
      const claim: Claim = { mac, firstSeenMs: now, lastSeenMs: now, source, router };
      this.#map.set(key, {
        key,
        lan: side === 'lan' ? claim : null,
        tunnel: side === 'tunnel' ? claim : null,
        current: side,
        isStatic: false,
        split: false,
        verifyUntil: 0,
      });
      this.#lowerExpiry(now + this.ageMs);
      return 'new';
    }
    if (b.isStatic) {
      const own = b.lan ?? b.tunnel;
      if (own !== null && own.mac === mac) return 'refreshed';
      this.#alarms?.raise(
        'neighbour-static-conflict',
        neighbourKeyToString(key),
        now,
        `${macToString(mac)} on the ${side} side claims an address statically bound to ${macToString(own?.mac ?? 0)}`,
      );
      return 'static-conflict';
    }
    // Forget a claim that aged out, so it cannot take part in move or split-brain decisions.
    if (b.lan !== null && now - b.lan.lastSeenMs >= this.ageMs) b.lan = null;
    if (b.tunnel !== null && now - b.tunnel.lastSeenMs >= this.ageMs) b.tunnel = null;
    const prevCurrent = side === 'lan' ? b.lan : b.tunnel;
    const holder = b.current === 'lan' ? b.lan : b.tunnel;
    const wasHolderSame = b.current === side && holder !== null && holder.mac === mac;
    let claim = prevCurrent;
    if (claim === null || claim.mac !== mac) {
      claim = { mac, firstSeenMs: now, lastSeenMs: now, source, router };
      if (side === 'lan') b.lan = claim;
      else b.tunnel = claim;
    } else {
      claim.lastSeenMs = now;
      claim.source = source;
      claim.router = router;
    }
    this.#lowerExpiry(now + this.ageMs);
    if (this.#splitActive(b, now)) {
      if (!b.split) b.split = true;
      const other = side === 'lan' ? b.tunnel : b.lan;
      this.#alarms?.raise(
        'split-brain',
        neighbourKeyToString(key),
        now,
        `IP live on both sides: ${macToString(b.lan?.mac ?? 0)} on the LAN and ${macToString(b.tunnel?.mac ?? 0)} in the DC (latest claim ${macToString(mac)}, other seen ${now - (other?.lastSeenMs ?? now)} ms ago)`,
      );
      return 'split-brain';
    }
    if (b.split) this.#endSplit(b, now);
    if (wasHolderSame) return 'refreshed';
    if (holder === null) {
      // The previous holder's claim aged out: taking over a forgotten address is like learning it anew.
      b.current = side;
      return 'new';
    }
    if (side === 'tunnel' && b.current === 'lan' && holder.mac !== mac) {
      if (now - holder.lastSeenMs < this.splitBrainWindowMs) return 'contested';
      if (this.verifyMs > 0) {
        // A verification answers the question for one window; after that, ask again.
        if (b.verifyUntil === 0 || now >= b.verifyUntil + this.splitBrainWindowMs) {
          b.verifyUntil = now + this.verifyMs;
          return 'verify';
        }
        if (now < b.verifyUntil) return 'contested';
      }
    }
    b.verifyUntil = 0;
    b.current = side;
    return 'moved';
  }

  /** The live binding for `key`, or undefined. The table's own object: read it, do not keep it. */
  lookup(key: NeighbourKey, now: number): NeighbourBinding | undefined {
    const b = this.#map.get(key);
    return b !== undefined && this.#live(b, now) ? b : undefined;
  }

  /**
   * The tunnel claim to answer a LAN ARP request / NS with, or null. Only when the tunnel side holds the
   * IP, its claim was seen within `freshMs` (static claims are always fresh) and there is no split brain.
   */
  proxyClaim(key: NeighbourKey, now: number, freshMs: number): NeighbourClaim | null {
    const b = this.#map.get(key);
    if (b === undefined || b.current !== 'tunnel' || b.tunnel === null) return null;
    if (now - b.tunnel.lastSeenMs >= Math.min(freshMs, this.ageMs)) return null;
    if (this.#splitActive(b, now)) return null;
    return b.tunnel;
  }

  /** Whether both sides currently claim `key` with different MACs (see the file comment). */
  isSplitBrain(key: NeighbourKey, now: number): boolean {
    const b = this.#map.get(key);
    return b !== undefined && this.#splitActive(b, now);
  }

  /** Removes dead bindings and clears split-brain alarms whose window passed. Returns removals. */
  sweep(now: number): number {
    let removed = 0;
    let earliest = Infinity;
    for (const b of this.#map.values()) {
      if (!this.#live(b, now)) {
        this.#drop(b, now);
        removed++;
        continue;
      }
      if (b.split && !this.#splitActive(b, now)) this.#endSplit(b, now);
      if (!b.isStatic) {
        const exp = Math.max(b.lan?.lastSeenMs ?? -Infinity, b.tunnel?.lastSeenMs ?? -Infinity) + this.ageMs;
        if (exp < earliest) earliest = exp;
      }
    }
    this.#earliestExpiry = earliest;
    if (this.#full && this.#map.size <= Math.floor(this.maxEntries * 0.9)) {
      this.#full = false;
      this.#alarms?.clear('neighbour-table-full', '', now);
    }
    return removed;
  }

  liveCount(now: number): number {
    let n = 0;
    for (const b of this.#map.values()) if (this.#live(b, now)) n++;
    return n;
  }

  /** Frozen copies of live bindings for status output. */
  entries(now: number): readonly NeighbourBinding[] {
    const out: NeighbourBinding[] = [];
    const copy = (c: Claim | null): NeighbourClaim | null => (c === null ? null : Object.freeze({ ...c }));
    for (const b of this.#map.values()) {
      if (!this.#live(b, now)) continue;
      out.push(Object.freeze({ key: b.key, lan: copy(b.lan), tunnel: copy(b.tunnel), current: b.current, isStatic: b.isStatic }));
    }
    return Object.freeze(out);
  }

  #live(b: Binding, now: number): boolean {
    if (b.isStatic) return true;
    return (b.lan !== null && now - b.lan.lastSeenMs < this.ageMs) || (b.tunnel !== null && now - b.tunnel.lastSeenMs < this.ageMs);
  }

  #splitActive(b: Binding, now: number): boolean {
    const l = b.lan;
    const r = b.tunnel;
    if (b.isStatic || l === null || r === null || l.mac === r.mac) return false;
    const w = this.splitBrainWindowMs;
    return now - l.lastSeenMs < w && now - r.lastSeenMs < w && l.firstSeenMs <= r.lastSeenMs && r.firstSeenMs <= l.lastSeenMs;
  }

  #endSplit(b: Binding, now: number): void {
    b.split = false;
    this.#alarms?.clear('split-brain', neighbourKeyToString(b.key), now);
  }

  #drop(b: Binding, now: number): void {
    if (b.split) this.#endSplit(b, now);
    this.#map.delete(b.key);
  }

  #lowerExpiry(t: number): void {
    if (t < this.#earliestExpiry) this.#earliestExpiry = t;
  }
}

function positive(v: number, name: string): number {
  if (!(v > 0)) throw new RangeError(`NeighbourTable ${name} must be > 0, got ${v}`);
  return v;
}
