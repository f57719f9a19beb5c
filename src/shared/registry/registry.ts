// SPDX-License-Identifier: UNLICENSED
// The device registry: serial -> tenant -> segment (VNI, VTEPs, options), plus the enrollment allowlist
// state of every serial and a denylist. Pure: parse/validate JSON, look up, and return updated copies.
// The EST server, the headend and `connector registry` all read the same document.
import { isIP } from 'node:net';
import { ConnectorError } from '../errors.js';

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

function fail(path: string, problem: string): never {
  throw new ConnectorError('CK_ERR_REGISTRY', `registry ${path}: ${problem}`);
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object');
  return v as Record<string, unknown>;
}

function optStr(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(`${path}.${key}`, 'must be a string');
  return v;
}

export function isValidSerial(s: string): boolean {
  return SERIAL_RE.test(s);
}

function parseSegment(v: unknown, path: string): Segment {
  const o = obj(v, path);
  const vni = o['vni'];
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 1 || vni > 0xffffff) {
    fail(`${path}.vni`, 'must be an integer 1..16777215');
  }
  const vteps = o['vteps'] ?? [];
  if (!Array.isArray(vteps) || vteps.some((x) => typeof x !== 'string' || isIP(x) === 0)) {
    fail(`${path}.vteps`, 'must be a list of IP addresses');
  }
  const mtu = o['vtepPathMtu'] ?? 1550;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 576 || mtu > 9216) fail(`${path}.vtepPathMtu`, 'must be an integer 576..9216');
  return Object.freeze({
    vni,
    vteps: Object.freeze([...(vteps as string[])]),
    multiSite: o['multiSite'] === true,
    allowDhcpFromDc: o['allowDhcpFromDc'] === true,
    vtepPathMtu: mtu,
  });
}

/** Validates a registry document; errors name the JSON path and what is expected there. */
export function parseRegistry(doc: unknown): Registry {
  const root = obj(doc, '(root)');
  if (root['version'] !== 1) fail('version', 'must be 1');
  const tenants: Record<string, Tenant> = {};
  const vnis = new Map<number, string>();
  for (const [name, t] of Object.entries(obj(root['tenants'] ?? {}, 'tenants'))) {
    if (!NAME_RE.test(name)) fail(`tenants.${name}`, 'tenant names are lowercase letters, digits, - and _');
    const segs: Record<string, Segment> = {};
    for (const [sname, s] of Object.entries(obj(obj(t, `tenants.${name}`)['segments'] ?? {}, `tenants.${name}.segments`))) {
      const seg = parseSegment(s, `tenants.${name}.segments.${sname}`);
      const other = vnis.get(seg.vni);
      if (other) fail(`tenants.${name}.segments.${sname}.vni`, `VNI ${seg.vni} is already used by ${other}`);
      vnis.set(seg.vni, `${name}/${sname}`);
      segs[sname] = seg;
    }
    tenants[name] = Object.freeze({ segments: Object.freeze(segs) });
  }
  const devices: Record<string, Device> = {};
  for (const [serial, d] of Object.entries(obj(root['devices'] ?? {}, 'devices'))) {
    const path = `devices.${serial}`;
    if (!isValidSerial(serial)) fail(path, 'serials are 1-64 letters, digits, ., _ or -');
    const o = obj(d, path);
    const state = o['state'];
    if (!DEVICE_STATES.includes(state as DeviceState)) fail(`${path}.state`, `must be one of ${DEVICE_STATES.join(', ')}`);
    const dev: Device = { state: state as DeviceState, updatedAt: optStr(o, 'updatedAt', path) ?? '' };
    for (const k of ['tenant', 'segment', 'site', 'batch', 'idevidFingerprint'] as const) {
      const v = optStr(o, k, path);
      if (v !== undefined) dev[k] = v;
    }
    if (dev.state === 'claimed') {
      if (!dev.tenant || !tenants[dev.tenant]) fail(`${path}.tenant`, `claimed devices need a tenant defined under tenants`);
      if (dev.segment && !tenants[dev.tenant]?.segments[dev.segment]) {
        fail(`${path}.segment`, `tenant ${dev.tenant} has no segment "${dev.segment}"`);
      }
    }
    devices[serial] = Object.freeze(dev);
  }
  const deny = root['denylist'] ?? [];
  if (!Array.isArray(deny) || deny.some((x) => typeof x !== 'string')) fail('denylist', 'must be a list of serials');
  return Object.freeze({
    version: 1,
    tenants: Object.freeze(tenants),
    devices: Object.freeze(devices),
    denylist: Object.freeze([...(deny as string[])]),
  });
}

export type Admission =
  | { ok: true; serial: string; tenant: string; segmentName: string; segment: Segment; site?: string }
  | { ok: false; serial: string; reason: 'unknown-serial' | 'unclaimed' | 'revoked' | 'denylisted' | 'no-segment' };

/** May this device open a tunnel, and onto which segment? The headend's only admission question. */
export function admitDevice(reg: Registry, serial: string): Admission {
  if (reg.denylist.includes(serial)) return { ok: false, serial, reason: 'denylisted' };
  const d = reg.devices[serial];
  if (!d) return { ok: false, serial, reason: 'unknown-serial' };
  if (d.state === 'revoked') return { ok: false, serial, reason: 'revoked' };
  if (d.state !== 'claimed' || !d.tenant) return { ok: false, serial, reason: 'unclaimed' };
  const segs = reg.tenants[d.tenant]?.segments ?? {};
  const segmentName = d.segment ?? Object.keys(segs).sort()[0];
  const segment = segmentName !== undefined ? segs[segmentName] : undefined;
  if (segmentName === undefined || !segment) return { ok: false, serial, reason: 'no-segment' };
  return { ok: true, serial, tenant: d.tenant, segmentName, segment, ...(d.site ? { site: d.site } : {}) };
}

export type EnrollmentDecision =
  | { ok: true; tenant: string }
  | { ok: false; reason: 'unknown-serial' | 'revoked' | 'denylisted' }
  | { ok: false; reason: 'unclaimed' };

/** EST's question: may this serial get an operational certificate now (202 while unclaimed)? */
export function enrollmentDecision(reg: Registry, serial: string): EnrollmentDecision {
  if (reg.denylist.includes(serial)) return { ok: false, reason: 'denylisted' };
  const d = reg.devices[serial];
  if (!d) return { ok: false, reason: 'unknown-serial' };
  if (d.state === 'revoked') return { ok: false, reason: 'revoked' };
  if (d.state !== 'claimed' || !d.tenant) return { ok: false, reason: 'unclaimed' };
  return { ok: true, tenant: d.tenant };
}

function withDevice(reg: Registry, serial: string, dev: Device): Registry {
  return parseRegistry({ ...reg, devices: { ...reg.devices, [serial]: dev } });
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
  return next.denylist.includes(serial) ? next : parseRegistry({ ...next, denylist: [...next.denylist, serial] });
}
