// SPDX-License-Identifier: UNLICENSED
// A parsed registry as the entries that changed since the one parsed before it. The headend parses the
// file in a thread of its own (registry-parse-thread.ts) and receives only this: at 1,000 tenants a full
// parse costs 20-45 ms of this box's loop, a delta of one tenant a few microseconds to apply, so a change
// no longer stalls every session's frames. Pure: the parsing side diffs, the serving side applies.
import { devicesWith, type DeviceChanges } from './devices-overlay.js';
import { EMPTY_REGISTRY, type Device, type Registry, type Segment, type Tenant } from './registry.js';

/** What changed, entry by entry (null: removed). `full`: apply to the empty registry, not to the last one. */
export interface RegistryDelta {
  readonly full: boolean;
  readonly tenants: readonly (readonly [string, Tenant | null])[];
  readonly devices: readonly (readonly [string, Device | null])[];
  readonly denylist?: readonly string[];
}

/** The parsing side's memory of what it sent last: each entry as JSON, the cheapest exact comparison. */
export interface RegistryIndex {
  readonly tenants: ReadonlyMap<string, string>;
  readonly devices: ReadonlyMap<string, string>;
  readonly denylist: string;
}

export const EMPTY_INDEX: RegistryIndex = { tenants: new Map(), devices: new Map(), denylist: '' };

function diffRecord<T>(
  before: ReadonlyMap<string, string>,
  now: Readonly<Record<string, T>>,
): { changes: [string, T | null][]; index: Map<string, string> } {
  const changes: [string, T | null][] = [];
  const index = new Map<string, string>();
  for (const [key, value] of Object.entries(now)) {
    const text = JSON.stringify(value);
    index.set(key, text);
    if (before.get(key) !== text) changes.push([key, value]);
  }
  for (const key of before.keys()) if (!index.has(key)) changes.push([key, null]);
  return { changes, index };
}

/** The delta from the registry `before` describes to `next` (everything, when `before` is empty). */
export function diffRegistry(before: RegistryIndex, next: Registry): { delta: RegistryDelta; index: RegistryIndex } {
  const tenants = diffRecord(before.tenants, next.tenants);
  const devices = diffRecord(before.devices, next.devices);
  const denylist = JSON.stringify(next.denylist);
  const full = before === EMPTY_INDEX;
  return {
    delta: {
      full,
      tenants: tenants.changes,
      devices: devices.changes,
      ...(full || denylist !== before.denylist ? { denylist: next.denylist } : {}),
    },
    index: { tenants: tenants.index, devices: devices.index, denylist },
  };
}

// A delta crossed a thread as a structured clone: its entries are plain objects again, frozen here as
// parseRegistry freezes its own.
function frozenSegment(s: Segment): Segment {
  const { sandbox, failover } = s;
  return Object.freeze({
    ...s,
    vteps: Object.freeze([...s.vteps]),
    ...(sandbox ? { sandbox: Object.freeze({ ...sandbox }) } : {}),
    ...(failover ? { failover: Object.freeze({ ...failover }) } : {}),
  });
}

function frozenTenant(t: Tenant): Tenant {
  const segments: Record<string, Segment> = {};
  for (const [name, s] of Object.entries(t.segments)) segments[name] = frozenSegment(s);
  return Object.freeze({ segments: Object.freeze(segments) });
}

function frozenDevice(d: Device): Device {
  return Object.freeze({ ...d, ...(d.vlans ? { vlans: Object.freeze({ ...d.vlans }) } : {}) });
}

/**
 * `base` with `delta` applied; `base` is not modified. Only changed entries are touched: the tenants
 * map is copied (a few hundred microseconds at 5,000), the device map is derived (devices-overlay.ts).
 * The parsing side validated the whole document, so the result is what parseRegistry would return, and
 * an entry the delta does not name keeps its identity.
 */
export function applyRegistryDelta(base: Registry, delta: RegistryDelta): Registry {
  // Nothing changed: the very same registry, which tells a service it has nothing to redo.
  if (!delta.full && delta.tenants.length === 0 && delta.devices.length === 0 && delta.denylist === undefined) return base;
  const from = delta.full ? EMPTY_REGISTRY : base;
  let tenants = from.tenants;
  if (delta.tenants.length > 0 || delta.full) {
    const copy: Record<string, Tenant> = { ...from.tenants };
    for (const [name, t] of delta.tenants) {
      if (t === null) delete copy[name];
      else copy[name] = frozenTenant(t);
    }
    tenants = Object.freeze(copy);
  }
  let devices = from.devices;
  if (delta.full) {
    const flat: Record<string, Device> = {};
    for (const [serial, d] of delta.devices) if (d !== null) flat[serial] = frozenDevice(d);
    devices = Object.freeze(flat);
  } else if (delta.devices.length > 0) {
    const step: DeviceChanges = new Map(delta.devices.map(([serial, d]) => [serial, d === null ? null : frozenDevice(d)]));
    devices = devicesWith(from.devices, step);
  }
  const denylist = delta.denylist ? Object.freeze([...delta.denylist]) : from.denylist;
  return Object.freeze({ version: 1, tenants, devices, denylist });
}
