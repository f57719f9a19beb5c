// SPDX-License-Identifier: UNLICENSED
// Which segments a registry change touches. A reload used to hand the switch every segment again: at
// 1,000 tenants that took 10-20 ms of the loop every session's frames wait on (code run once per change
// never gets compiled). A parse keeps the identity of every tenant it did not change, so only tenants
// that are new, gone or not the same object are looked at. Pure.
import type { SegmentInfo } from './forwarder.js';
import type { L2Switch } from './l2-switch.js';
import type { Registry, Segment, Tenant } from '../../shared/registry/registry.js';

export interface SegmentChange {
  /** Every live segment is in `upsert`: give the switch the whole list (it also drops what it holds beyond). */
  readonly full: boolean;
  /** Segments new or changed: the switch (re)configures each. */
  readonly upsert: readonly SegmentInfo[];
  /** VNIs no longer in the registry (or a sandbox past its expiry). */
  readonly removed: readonly number[];
  /** Tenants looked at: new, gone or changed. */
  readonly tenants: readonly string[];
  /** What each of those tenants had before (empty for a new one). */
  readonly before: ReadonlyMap<string, readonly SegmentInfo[]>;
}

/** A drill's sandbox past its expiry (wall-clock `nowMs`) is left out, so it ends on time even when nothing rewrites the registry. */
function isLive(s: Segment, nowMs: number): boolean {
  return !(s.sandbox && nowMs > 0 && Date.parse(s.sandbox.expiresAt) <= nowMs);
}

function infosOf(name: string, t: Tenant, nowMs: number): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  for (const [sname, s] of Object.entries(t.segments)) {
    if (isLive(s, nowMs)) out.push({ vni: s.vni, name: `${name}/${sname}`, vteps: s.vteps, multiSite: s.multiSite });
  }
  return out;
}

function expiryOf(t: Tenant, nowMs: number): number | undefined {
  let next: number | undefined;
  for (const s of Object.values(t.segments)) {
    const at = s.sandbox ? Date.parse(s.sandbox.expiresAt) : NaN;
    if (at > nowMs && (next === undefined || at < next)) next = at;
  }
  return next;
}

/** What `change` says, told to a switch. */
export function applySegmentChange(l2: L2Switch, change: SegmentChange): void {
  if (change.full) l2.setSegments(change.upsert);
  else if (change.tenants.length > 0) l2.updateSegments(change.upsert, change.removed);
}

/** The segments the switch was last given, per tenant, and the sandbox expiries among them. */
export class SegmentBook {
  #tenants: Registry['tenants'] | undefined;
  readonly #infos = new Map<string, readonly SegmentInfo[]>();
  readonly #expiry = new Map<string, number>();

  /**
   * The change from what was applied to `reg` at wall-clock `nowMs`, recorded as applied. `all`: look at
   * every tenant (the start, or a sandbox's expiry, which no registry write announces).
   */
  change(reg: Registry, nowMs: number, all = false): SegmentChange {
    const before = this.#tenants;
    const names: string[] = [];
    for (const name of Object.keys(reg.tenants)) if (all || before?.[name] !== reg.tenants[name]) names.push(name);
    for (const name of this.#infos.keys()) if (!Object.hasOwn(reg.tenants, name)) names.push(name);
    const upsert: SegmentInfo[] = [];
    const gone = new Set<number>();
    const was = new Map<string, readonly SegmentInfo[]>();
    for (const name of names) {
      const old = this.#infos.get(name) ?? [];
      was.set(name, old);
      for (const s of old) gone.add(s.vni);
      const t = reg.tenants[name];
      const now = t ? infosOf(name, t, nowMs) : [];
      if (now.length > 0) this.#infos.set(name, now);
      else this.#infos.delete(name);
      upsert.push(...now);
      const exp = t ? expiryOf(t, nowMs) : undefined;
      if (exp === undefined) this.#expiry.delete(name);
      else this.#expiry.set(name, exp);
    }
    // VNIs are unique in a registry: one moved between two changed tenants is upserted, not removed.
    for (const s of upsert) gone.delete(s.vni);
    this.#tenants = reg.tenants;
    return { full: all, upsert, removed: [...gone], tenants: names, before: was };
  }

  /** The next sandbox expiry after `nowMs` among the applied segments, when the switch must drop one. */
  nextExpiry(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const at of this.#expiry.values()) if (at > nowMs && (next === undefined || at < next)) next = at;
    return next;
  }
}
