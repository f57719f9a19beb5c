// SPDX-License-Identifier: UNLICENSED
// A registry's device map derived from another by a few changes, sharing its structure: at 100,000 units
// a copy of the map costs about 100 ms per change on this box, which every subscriber paid for every
// operator claim. The derived map is a read-only view (a Proxy) of one flat frozen root plus the changes
// made since it; every service keeps reading `reg.devices[serial]`, `Object.entries(reg.devices)`, JSON.
// When the changes grow past a sixteenth of the root (at least 1,024) they are folded into a new flat
// root, so a lookup never walks more than one layer and the folding cost is spread over many changes.
import type { Device } from './registry.js';

export type Devices = Readonly<Record<string, Device>>;
/** serial -> the unit as it is now, or null: removed. */
export type DeviceChanges = ReadonlyMap<string, Device | null>;

interface Layer {
  readonly root: Devices;
  readonly rootSize: number;
  readonly changes: DeviceChanges;
}

/** Overlay views and their layers. */
const layers = new WeakMap<object, Layer>();
/** Every derived map (view or folded root): the map it was derived from and the step between them. */
const steps = new WeakMap<object, { readonly from: Devices; readonly step: DeviceChanges }>();
/** Unit counts of derived maps: counting a view's keys walks all of them through the proxy (~150 ms at 100,000). */
const sizes = new WeakMap<object, number>();

const MIN_FOLD = 1_024;

/** `base` with `step` applied; `base` itself is never modified. */
export function devicesWith(base: Devices, step: DeviceChanges): Devices {
  const l = layers.get(base);
  const root = l?.root ?? base;
  const rootSize = l?.rootSize ?? Object.keys(base).length;
  const changes = new Map(l?.changes ?? []);
  let size = deviceCount(base);
  for (const [serial, dev] of step) {
    const had = l ? valueOf(l, serial) !== undefined : Object.hasOwn(base, serial);
    size += (dev === null ? 0 : 1) - (had ? 1 : 0);
    if (dev === null && !Object.hasOwn(root, serial)) changes.delete(serial);
    else changes.set(serial, dev);
  }
  const next = changes.size > Math.max(MIN_FOLD, rootSize / 16) ? fold(root, changes) : view({ root, rootSize, changes });
  steps.set(next, { from: base, step: new Map(step) });
  sizes.set(next, size);
  return next;
}

/** How many units `devices` holds: O(1) for a derived map, a key count otherwise. */
export function deviceCount(devices: Devices): number {
  return sizes.get(devices) ?? Object.keys(devices).length;
}

/** The changes that made `next` from `prev`, when `next` was derived from exactly `prev`; else null. */
export function stepBetween(prev: Devices, next: Devices): DeviceChanges | null {
  const s = steps.get(next);
  return s !== undefined && s.from === prev ? s.step : null;
}

function fold(root: Devices, changes: DeviceChanges): Devices {
  const flat: Record<string, Device> = Object.assign({}, root);
  for (const [serial, dev] of changes) {
    if (dev === null) delete flat[serial];
    else flat[serial] = dev;
  }
  return Object.freeze(flat);
}

function valueOf(l: Layer, key: string): Device | undefined {
  const c = l.changes.get(key);
  if (c !== undefined) return c ?? undefined;
  return Object.hasOwn(l.root, key) ? l.root[key] : undefined;
}

function view(l: Layer): Devices {
  const refuse = (): boolean => false;
  const proxy = new Proxy({} as Devices, {
    get: (_t, key) => {
      if (typeof key === 'string' && l.changes.has(key)) return l.changes.get(key) ?? undefined;
      return Reflect.get(l.root, key);
    },
    has: (_t, key) => (typeof key === 'string' && l.changes.has(key) ? l.changes.get(key) !== null : key in l.root),
    ownKeys: () => {
      const keys: string[] = [];
      for (const k of Object.keys(l.root)) if (l.changes.get(k) !== null) keys.push(k);
      for (const [k, v] of l.changes) if (v !== null && !Object.hasOwn(l.root, k)) keys.push(k);
      return keys;
    },
    getOwnPropertyDescriptor: (_t, key) => {
      const v = typeof key === 'string' ? valueOf(l, key) : undefined;
      // Configurable, as the proxy's target does not have it; read-only all the same.
      return v === undefined ? undefined : { value: v, writable: false, enumerable: true, configurable: true };
    },
    set: refuse,
    defineProperty: refuse,
    deleteProperty: refuse,
    setPrototypeOf: refuse,
  });
  layers.set(proxy, l);
  return proxy;
}
