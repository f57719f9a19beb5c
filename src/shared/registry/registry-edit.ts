// SPDX-License-Identifier: UNLICENSED
// The operator's edits of tenants, segments and units (`connector tenant|segment|unit`), as pure functions
// registry -> registry. Each result goes through parseRegistry, so the CLI enforces exactly the rules the
// services load with (names, VNI range and uniqueness, VTEP addresses, MTU range); the checks here only
// give the operator a clearer message first (what exists, what still uses it).
import { ConnectorError } from '../errors.js';
import { isValidSerial, parseRegistry, type Registry, type Segment } from './registry.js';

function fail(problem: string): never {
  throw new ConnectorError('CK_ERR_REGISTRY', problem);
}

function tenantOf(reg: Registry, tenant: string): Registry['tenants'][string] {
  const t = reg.tenants[tenant];
  if (!t)
    fail(`unknown tenant "${tenant}"${Object.keys(reg.tenants).length ? ` (tenants: ${Object.keys(reg.tenants).sort().join(', ')})` : ''}`);
  return t;
}

function unitsUsing(reg: Registry, tenant: string, segment?: string): string[] {
  return Object.entries(reg.devices)
    .filter(([, d]) => d.tenant === tenant && d.state === 'claimed')
    .filter(([, d]) => segment === undefined || d.segment === segment || Object.values(d.vlans ?? {}).includes(segment))
    .map(([s]) => s)
    .sort();
}

function listed(serials: string[]): string {
  return serials.length > 5 ? `${serials.slice(0, 5).join(', ')} and ${serials.length - 5} more` : serials.join(', ');
}

export function addTenant(reg: Registry, name: string): Registry {
  if (reg.tenants[name]) fail(`tenant "${name}" already exists`);
  return parseRegistry({ ...reg, tenants: { ...reg.tenants, [name]: { segments: {} } } });
}

/** Refused while units are claimed for it; its segments go with it. */
export function removeTenant(reg: Registry, name: string): Registry {
  tenantOf(reg, name);
  const users = unitsUsing(reg, name);
  if (users.length) fail(`tenant "${name}" still has claimed units (${listed(users)}): revoke them first`);
  const tenants = { ...reg.tenants };
  delete tenants[name];
  return parseRegistry({ ...reg, tenants });
}

export interface SegmentInput {
  readonly vni: number;
  readonly vteps?: readonly string[];
  readonly vtepPathMtu?: number;
  readonly multiSite?: boolean;
  readonly allowDhcpFromDc?: boolean;
}

/** Adds a segment, or with `replace` changes an existing one's VNI, VTEPs, MTU and options. */
export function addSegment(reg: Registry, tenant: string, name: string, s: SegmentInput, replace = false): Registry {
  const t = tenantOf(reg, tenant);
  const old = t.segments[name];
  if (old && !replace) fail(`segment "${name}" of tenant "${tenant}" already exists (--replace to change it)`);
  if (old?.sandbox) fail(`segment "${name}" of tenant "${tenant}" is a drill sandbox; end the drill instead`);
  for (const [tn, tt] of Object.entries(reg.tenants)) {
    for (const [sn, seg] of Object.entries(tt.segments)) {
      if (seg.vni === s.vni && !(tn === tenant && sn === name)) fail(`VNI ${s.vni} is already used by segment ${tn}/${sn}`);
    }
  }
  const seg: Record<string, unknown> = { vni: s.vni, vteps: [...(s.vteps ?? old?.vteps ?? [])] };
  seg['vtepPathMtu'] = s.vtepPathMtu ?? old?.vtepPathMtu ?? 1550;
  seg['multiSite'] = s.multiSite ?? old?.multiSite ?? false;
  seg['allowDhcpFromDc'] = s.allowDhcpFromDc ?? old?.allowDhcpFromDc ?? false;
  if (old?.failover) seg['failover'] = old.failover;
  const segments = { ...t.segments, [name]: seg as unknown as Segment };
  return parseRegistry({ ...reg, tenants: { ...reg.tenants, [tenant]: { segments } } });
}

/** Refused while a claimed unit uses it (as its segment or one of its VLANs'). */
export function removeSegment(reg: Registry, tenant: string, name: string): Registry {
  const t = tenantOf(reg, tenant);
  if (!t.segments[name])
    fail(`tenant "${tenant}" has no segment "${name}" (segments: ${Object.keys(t.segments).sort().join(', ') || 'none'})`);
  const users = unitsUsing(reg, tenant, name);
  if (users.length) fail(`segment "${tenant}/${name}" is still used by claimed units (${listed(users)}): revoke or re-claim them first`);
  const segments = { ...t.segments };
  delete segments[name];
  return parseRegistry({ ...reg, tenants: { ...reg.tenants, [tenant]: { segments } } });
}

/** `unit allow`: one serial as 'allowed' (what the factory allowlist import does for a batch). */
export function allowUnit(reg: Registry, serial: string, now: Date, o: { batch?: string; idevidFingerprint?: string } = {}): Registry {
  if (!isValidSerial(serial)) fail(`"${serial}" is not a serial (1-64 letters, digits, ., _ or -)`);
  const d = reg.devices[serial];
  if (d) fail(`unit ${serial} is already in the registry (${d.state})`);
  const dev = { state: 'allowed', updatedAt: now.toISOString(), ...o };
  return parseRegistry({ ...reg, devices: { ...reg.devices, [serial]: dev } });
}

export function tenantTable(reg: Registry): string[] {
  const lines = ['tenant           segments  claimed-units'];
  for (const [name, t] of Object.entries(reg.tenants).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${name.padEnd(16)} ${String(Object.keys(t.segments).length).padEnd(9)} ${unitsUsing(reg, name).length}`);
  }
  return lines;
}

export function segmentTable(reg: Registry, tenant?: string): string[] {
  const lines = ['tenant           segment          vni       mtu    options              vteps'];
  const tenants = tenant === undefined ? Object.keys(reg.tenants).sort() : [tenant];
  for (const tn of tenants) {
    for (const [sn, s] of Object.entries(tenantOf(reg, tn).segments).sort(([a], [b]) => a.localeCompare(b))) {
      const opts = [s.multiSite && 'multi-site', s.allowDhcpFromDc && 'dhcp-from-dc', s.sandbox && 'sandbox', s.failover && 'failover']
        .filter(Boolean)
        .join(',');
      lines.push(
        `${tn.padEnd(16)} ${sn.padEnd(16)} ${String(s.vni).padEnd(9)} ${String(s.vtepPathMtu).padEnd(6)} ${(opts || '-').padEnd(20)} ${s.vteps.join(',') || '-'}`,
      );
    }
  }
  return lines;
}
