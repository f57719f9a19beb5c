// SPDX-License-Identifier: UNLICENSED
// The device registry: serial -> tenant -> segment (VNI, VTEPs, options), plus the enrollment allowlist
// state of every serial and a denylist. Pure: parse/validate JSON (unknown keys refused), look up, and
// return updated copies.
// The EST server, the headend and `connector registry` all read the same document.
import { isIP } from 'node:net';
import { ConnectorError } from '../errors.js';
import { devicesWith } from './devices-overlay.js';
import {
  array,
  boolean,
  formatPath,
  integer,
  literal,
  object,
  oneOf,
  optional,
  parseWith,
  record,
  refine,
  string,
} from '../schema/schema.js';

export type DeviceState = 'allowed' | 'claimed' | 'revoked';
export const DEVICE_STATES: readonly DeviceState[] = ['allowed', 'claimed', 'revoked'];

export interface Segment {
  /** 24-bit VXLAN network identifier; chosen here, never by the device. */
  vni: number;
  /** Addresses of the tenant's VTEPs (hypervisors / ToR) that receive the segment as VXLAN/UDP 4789. */
  vteps: readonly string[];
  /** Let frames from one site's tunnel reach another site's tunnel of the same segment. */
  multiSite: boolean;
  /** Let DHCP server messages from the DC reach the customer LAN. */
  allowDhcpFromDc: boolean;
  /** IP MTU of the path to the VTEPs; < 1550 cannot carry 1514-byte inner frames over IPv4. */
  vtepPathMtu: number;
  /** A drill's sandbox (src/dr): never connected to a customer LAN, so no device may be admitted to it. */
  sandbox?: Readonly<{ drill: string; expiresAt: string; outbound: boolean }>;
  /** Full-site failover (src/dr): the DC provides the site's gateway; the site's units are fenced off. */
  failover?: Readonly<{ gateway: string; since: string }>;
}

export interface Tenant {
  segments: Readonly<Record<string, Segment>>;
}

export interface Device {
  state: DeviceState;
  tenant?: string;
  segment?: string;
  site?: string;
  batch?: string;
  idevidFingerprint?: string;
  /** 802.1Q VLAN ID on the unit's LAN trunk (as text) -> segment of its tenant; untagged uses `segment`. */
  vlans?: Readonly<Record<string, string>>;
  updatedAt: string;
}

export interface Registry {
  version: 1;
  tenants: Readonly<Record<string, Tenant>>;
  devices: Readonly<Record<string, Device>>;
  denylist: readonly string[];
}

export const EMPTY_REGISTRY: Registry = Object.freeze({ version: 1, tenants: {}, devices: {}, denylist: [] });

const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** 1-4094 without leading zeros (0 is the priority tag, 4095 reserved by 802.1Q). */
const VLAN_ID_RE = /^(?:[1-9]\d{0,2}|[1-3]\d{3}|40[0-8]\d|409[0-4])$/;

function fail(path: string, problem: string): never {
  throw new ConnectorError('CK_ERR_REGISTRY', `registry ${path}: ${problem}`);
}

export function isValidSerial(s: string): boolean {
  return SERIAL_RE.test(s);
}

const ipAddress = refine(string(), (v) => (isIP(v) === 0 ? `"${v}" is not an IP address` : undefined));

const SEGMENT_SCHEMA = object({
  vni: integer(1, 0xffffff),
  vteps: optional(array(ipAddress), []),
  multiSite: optional(boolean(), false),
  allowDhcpFromDc: optional(boolean(), false),
  vtepPathMtu: optional(integer(576, 9216), 1550),
  sandbox: optional(object({ drill: string(), expiresAt: string(), outbound: optional(boolean(), false) })),
  failover: optional(object({ gateway: string(), since: string() })),
});

const DEVICE_SCHEMA = object({
  state: oneOf(DEVICE_STATES),
  tenant: optional(string({ allowEmpty: true })),
  segment: optional(string({ allowEmpty: true })),
  site: optional(string({ allowEmpty: true })),
  batch: optional(string({ allowEmpty: true })),
  idevidFingerprint: optional(string({ allowEmpty: true })),
  vlans: optional(record(string(), { keyPattern: VLAN_ID_RE, keyProblem: 'VLAN IDs are 1-4094' })),
  updatedAt: optional(string({ allowEmpty: true }), ''),
});

/** The document as written; parseRegistry adds the rules across entries (unique VNIs, claims). */
const REGISTRY_SCHEMA = object({
  version: literal(1),
  tenants: optional(
    record(object({ segments: optional(record(SEGMENT_SCHEMA), {}) }), {
      keyPattern: NAME_RE,
      keyProblem: 'tenant names are lowercase letters, digits, - and _',
    }),
    {},
  ),
  devices: optional(record(DEVICE_SCHEMA, { keyPattern: SERIAL_RE, keyProblem: 'serials are 1-64 letters, digits, ., _ or -' }), {}),
  denylist: optional(array(string({ allowEmpty: true })), []),
});

/** Validates a registry document; errors name the JSON path and what is expected there. */
export function parseRegistry(doc: unknown): Registry {
  const root = parseWith(REGISTRY_SCHEMA, doc, (i) => fail(formatPath(i.path), i.problem));
  const tenants: Record<string, Tenant> = {};
  const vnis = new Map<number, string>();
  for (const [name, t] of Object.entries(root.tenants)) {
    const segs: Record<string, Segment> = {};
    for (const [sname, seg] of Object.entries(t.segments)) {
      const other = vnis.get(seg.vni);
      if (other) fail(`tenants.${name}.segments.${sname}.vni`, `VNI ${seg.vni} is already used by ${other}`);
      vnis.set(seg.vni, `${name}/${sname}`);
      const { sandbox, failover, ...rest } = seg;
      segs[sname] = Object.freeze({
        ...rest,
        vteps: Object.freeze(seg.vteps),
        ...(sandbox ? { sandbox: Object.freeze(sandbox) } : {}),
        ...(failover ? { failover: Object.freeze(failover) } : {}),
      });
    }
    tenants[name] = Object.freeze({ segments: Object.freeze(segs) });
  }
  const devices: Record<string, Device> = {};
  for (const [serial, d] of Object.entries(root.devices)) {
    const path = `devices.${serial}`;
    const dev: Device = { state: d.state, updatedAt: d.updatedAt };
    for (const k of ['tenant', 'segment', 'site', 'batch', 'idevidFingerprint'] as const) {
      const v = d[k];
      if (v !== undefined) dev[k] = v;
    }
    if (dev.state === 'claimed') {
      if (!dev.tenant || !tenants[dev.tenant]) fail(`${path}.tenant`, `claimed devices need a tenant defined under tenants`);
      if (dev.segment && !tenants[dev.tenant]?.segments[dev.segment]) {
        fail(`${path}.segment`, `tenant ${dev.tenant} has no segment "${dev.segment}"`);
      }
    }
    if (dev.segment && dev.tenant && tenants[dev.tenant]?.segments[dev.segment]?.sandbox) {
      fail(`${path}.segment`, `"${dev.segment}" is a drill sandbox, which is never connected to a customer LAN`);
    }
    if (d.vlans && Object.keys(d.vlans).length > 0) {
      const segs = dev.tenant ? tenants[dev.tenant]?.segments : undefined;
      for (const [vid, seg] of Object.entries(d.vlans)) {
        if (!segs?.[seg]) fail(`${path}.vlans.${vid}`, `tenant ${dev.tenant ?? '(none)'} has no segment "${seg}"`);
        if (segs[seg]?.sandbox) fail(`${path}.vlans.${vid}`, `"${seg}" is a drill sandbox, which is never connected to a customer LAN`);
      }
      dev.vlans = Object.freeze({ ...d.vlans });
    }
    devices[serial] = Object.freeze(dev);
  }
  return Object.freeze({
    version: 1,
    tenants: Object.freeze(tenants),
    devices: Object.freeze(devices),
    denylist: Object.freeze(root.denylist),
  });
}

export type Admission =
  | { ok: true; serial: string; tenant: string; segmentName: string; segment: Segment; site?: string }
  | { ok: false; serial: string; reason: 'unknown-serial' | 'unclaimed' | 'revoked' | 'denylisted' | 'no-segment' | 'failover-active' };

/** May this device open a tunnel, and onto which segment? The headend's only admission question. */
export function admitDevice(reg: Registry, serial: string): Admission {
  if (reg.denylist.includes(serial)) return { ok: false, serial, reason: 'denylisted' };
  const d = reg.devices[serial];
  if (!d) return { ok: false, serial, reason: 'unknown-serial' };
  if (d.state === 'revoked') return { ok: false, serial, reason: 'revoked' };
  if (d.state !== 'claimed' || !d.tenant) return { ok: false, serial, reason: 'unclaimed' };
  const segs = reg.tenants[d.tenant]?.segments ?? {};
  // A drill's sandbox segment is never a device's segment, not even by default.
  const segmentName =
    d.segment ??
    Object.keys(segs)
      .sort()
      .find((n) => !segs[n]?.sandbox);
  const segment = segmentName !== undefined ? segs[segmentName] : undefined;
  if (segmentName === undefined || !segment || segment.sandbox) return { ok: false, serial, reason: 'no-segment' };
  // The DC holds the site's gateway address on this segment: the site's units stay fenced off until the
  // operator's handover (`connector failover end`) withdraws it, so the LAN never sees two gateways.
  if (segment.failover) return { ok: false, serial, reason: 'failover-active' };
  return { ok: true, serial, tenant: d.tenant, segmentName, segment, ...(d.site ? { site: d.site } : {}) };
}

/**
 * The segment of one VLAN of an admitted device's LAN trunk: VLAN 0 (untagged) is `admitDevice`'s segment;
 * a VLAN the registry does not map is refused ('vlan-unmapped'), never folded into the default segment.
 */
export function admitDeviceVlan(
  reg: Registry,
  serial: string,
  vlan: number,
): Admission | { ok: false; serial: string; reason: 'vlan-unmapped' } {
  const a = admitDevice(reg, serial);
  if (!a.ok || vlan === 0) return a;
  const name = reg.devices[serial]?.vlans?.[String(vlan)];
  const segment = name !== undefined ? reg.tenants[a.tenant]?.segments[name] : undefined;
  if (name === undefined || !segment) return { ok: false, serial, reason: 'vlan-unmapped' };
  if (segment.failover) return { ok: false, serial, reason: 'failover-active' };
  return { ...a, segmentName: name, segment };
}

export type EnrollmentDecision =
  { ok: true; tenant: string } | { ok: false; reason: 'unknown-serial' | 'revoked' | 'denylisted' } | { ok: false; reason: 'unclaimed' };

/** EST's question: may this serial get an operational certificate now (202 while unclaimed)? */
export function enrollmentDecision(reg: Registry, serial: string): EnrollmentDecision {
  if (reg.denylist.includes(serial)) return { ok: false, reason: 'denylisted' };
  const d = reg.devices[serial];
  if (!d) return { ok: false, reason: 'unknown-serial' };
  if (d.state === 'revoked') return { ok: false, reason: 'revoked' };
  if (d.state !== 'claimed' || !d.tenant) return { ok: false, reason: 'unclaimed' };
  return { ok: true, tenant: d.tenant };
}

/**
 * `reg` with one unit replaced: only that unit is validated (every rule about a unit involves only it and
 * the tenants), and the device map is shared with `reg`'s (devices-overlay.ts), so a claim among 100,000
 * units neither copies nor re-validates the other 99,999.
 */
function withDevice(reg: Registry, serial: string, dev: Device): Registry {
  const one = parseRegistry({ version: 1, tenants: reg.tenants, devices: { [serial]: dev }, denylist: [] }).devices[serial];
  if (!one) fail(`devices.${serial}`, 'invalid serial');
  return Object.freeze({ ...reg, devices: devicesWith(reg.devices, new Map([[serial, one]])) });
}

/** Adds serials from a factory allowlist as 'allowed'; existing entries keep their state. */
export function importAllowlist(
  reg: Registry,
  entries: readonly { serial: string; batch?: string; idevidFingerprint?: string }[],
  now: Date,
): Registry {
  const devices: Record<string, Device> = { ...reg.devices };
  for (const e of entries) {
    if (!isValidSerial(e.serial)) fail(`allowlist ${e.serial}`, 'invalid serial');
    if (devices[e.serial]) continue;
    devices[e.serial] = {
      state: 'allowed',
      updatedAt: now.toISOString(),
      ...(e.batch ? { batch: e.batch } : {}),
      ...(e.idevidFingerprint ? { idevidFingerprint: e.idevidFingerprint } : {}),
    };
  }
  return parseRegistry({ ...reg, devices });
}

export function claimDevice(reg: Registry, serial: string, tenant: string, now: Date, segment?: string, site?: string): Registry {
  const d = reg.devices[serial];
  if (!d) fail(`devices.${serial}`, 'unknown serial: import the factory allowlist first (connector registry import)');
  if (d.state === 'revoked') fail(`devices.${serial}`, 'revoked devices cannot be claimed again');
  if (!reg.tenants[tenant]) fail(`tenants.${tenant}`, 'unknown tenant: add it under "tenants" first');
  return withDevice(reg, serial, {
    ...d,
    state: 'claimed',
    tenant,
    ...(segment ? { segment } : {}),
    ...(site ? { site } : {}),
    updatedAt: now.toISOString(),
  });
}

export function revokeDevice(reg: Registry, serial: string, now: Date): Registry {
  const d = reg.devices[serial];
  if (!d) fail(`devices.${serial}`, 'unknown serial');
  const next = withDevice(reg, serial, { ...d, state: 'revoked', updatedAt: now.toISOString() });
  return next.denylist.includes(serial) ? next : Object.freeze({ ...next, denylist: Object.freeze([...next.denylist, serial]) });
}
