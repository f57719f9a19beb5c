// SPDX-License-Identifier: UNLICENSED
// The fleet as an operator sees it: every unit of the registry joined with the live sessions of the
// headends, filtered to what the operator may see. Pure: the registry and the sessions come in.
import type { Registry } from '../../shared/registry/registry.js';
import { canSee, type Operator } from './operators.js';

/** One live session as a headend reports it (GET /sessions). */
export interface LiveSession {
  serial: string;
  tenant: string;
  segment: string;
  vni: number;
  state: string;
  remote: string;
  site: string;
  agentVersion: string;
  startedAtMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Newer headends also report these (older ones leave them out). */
  vlan?: number;
  framesIn?: number;
  framesOut?: number;
  transport?: string;
  rttMs?: number | null;
  jitterMs?: number | null;
  /** Which headend reported it (its URL). */
  headend: string;
}

export interface UnitView {
  serial: string;
  /** Registry state: allowed (waiting for a claim), claimed, revoked. */
  state: string;
  tenant: string | null;
  segment: string | null;
  site: string | null;
  online: boolean;
  headend: string | null;
  remote: string | null;
  agentVersion: string | null;
  /** Wall-clock ms when the current session started; null when offline. */
  sinceMs: number | null;
  bytesIn: number;
  bytesOut: number;
  /** The headend's latest RTT probe of the session and its jitter, ms; null when unknown or offline. */
  rttMs: number | null;
  jitterMs: number | null;
  updatedAt: string;
}

export function fleetView(reg: Registry, sessions: readonly LiveSession[], op: Operator): UnitView[] {
  const bySerial = new Map<string, LiveSession>();
  for (const s of sessions) if (s.state === 'up' || !bySerial.has(s.serial)) bySerial.set(s.serial, s);
  const units: UnitView[] = [];
  for (const [serial, d] of Object.entries(reg.devices)) {
    if (!canSee(op, d.tenant)) continue;
    const s = bySerial.get(serial);
    const online = s !== undefined && s.state === 'up';
    units.push({
      serial,
      state: d.state,
      tenant: d.tenant ?? null,
      segment: d.segment ?? s?.segment ?? null,
      site: d.site ?? (s?.site || null),
      online,
      headend: online ? s.headend : null,
      remote: online ? s.remote : null,
      agentVersion: s?.agentVersion || null,
      sinceMs: online ? s.startedAtMs : null,
      bytesIn: s?.bytesIn ?? 0,
      bytesOut: s?.bytesOut ?? 0,
      rttMs: online ? (s.rttMs ?? null) : null,
      jitterMs: online ? (s.jitterMs ?? null) : null,
      updatedAt: d.updatedAt,
    });
  }
  return units.sort((a, b) => a.serial.localeCompare(b.serial));
}

export interface TenantView {
  name: string;
  segments: { name: string; vni: number; vteps: readonly string[]; multiSite: boolean }[];
  units: number;
  online: number;
}

export function tenantsView(reg: Registry, units: readonly UnitView[], op: Operator): TenantView[] {
  return Object.entries(reg.tenants)
    .filter(([name]) => canSee(op, name))
    .map(([name, t]) => ({
      name,
      segments: Object.entries(t.segments).map(([sn, s]) => ({ name: sn, vni: s.vni, vteps: s.vteps, multiSite: s.multiSite })),
      units: units.filter((u) => u.tenant === name).length,
      online: units.filter((u) => u.tenant === name && u.online).length,
    }));
}
