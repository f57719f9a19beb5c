// SPDX-License-Identifier: UNLICENSED
// The headend's admission decisions, pure: which segment a certificate's serial belongs to (the registry
// decides, never the device), what a registry change means for the sessions already up, and which
// segments' VTEP paths are too small for 1514-byte inner frames.
import { admitDevice, admitDeviceVlan, type Registry } from '../../shared/registry/registry.js';

/** Who is on the other end of an admitted session, for logs, metrics and the audit log. */
export interface SessionIdentity {
  id: string;
  serial: string;
  tenant: string;
  segmentName: string;
  vni: number;
  /** 802.1Q VLAN on the unit's LAN trunk this session carries; 0: untagged (the device's default segment). */
  vlan: number;
  /** address:port of the peer. */
  remote: string;
  /** SHA-256 of the client certificate (hex). */
  fingerprint: string;
}

/** A connection that completed the TLS handshake with a client certificate. */
export interface PeerCertificate {
  serial: string;
  fingerprint: string;
  remote: string;
}

export type AdmissionDecision = { ok: true; identity: SessionIdentity } | { ok: false; reason: string };

/** Certificate serial -> registry -> segment. `sessionId` names the session if it is admitted. */
export function admit(registry: Registry, peer: PeerCertificate, sessionId: string): AdmissionDecision {
  const a = admitDevice(registry, peer.serial);
  if (!a.ok) return { ok: false, reason: a.reason };
  return {
    ok: true,
    identity: {
      id: sessionId,
      serial: peer.serial,
      tenant: a.tenant,
      segmentName: a.segmentName,
      vni: a.segment.vni,
      vlan: 0,
      remote: peer.remote,
      fingerprint: peer.fingerprint,
    },
  };
}

/** A trunk unit names the VLAN a session carries in its hello: capability `vlan:<1-4094>`; none is untagged. */
export function helloVlan(capabilities: readonly string[]): number | 'bad' {
  const caps = capabilities.filter((c) => c.startsWith('vlan:'));
  if (caps.length === 0) return 0;
  const m = caps.length === 1 ? /^vlan:([1-9]\d{0,3})$/.exec(caps[0] ?? '') : null;
  const v = m ? Number(m[1]) : NaN;
  return v >= 1 && v <= 4094 ? v : 'bad';
}

/** The identity of an admitted connection once its hello named a VLAN, or why that VLAN is refused. */
export function admitVlan(reg: Registry, identity: SessionIdentity, vlan: number): AdmissionDecision {
  const a = admitDeviceVlan(reg, identity.serial, vlan);
  if (!a.ok) return { ok: false, reason: a.reason };
  return { ok: true, identity: { ...identity, segmentName: a.segmentName, vni: a.segment.vni, vlan } };
}

/**
 * The sessions a new registry no longer allows where they are, with the reason each is closed for:
 * `registry:<refusal>` for a device refused now, `segment-changed` for one moved to another segment.
 * With `prev`, the registry every session was last checked against, a session whose unit, tenant and the
 * denylist are the very same entries in both is skipped: its answer cannot have changed.
 */
export function closedByRegistry<S extends { identity: Pick<SessionIdentity, 'serial' | 'vni' | 'vlan'> }>(
  reg: Registry,
  sessions: Iterable<S>,
  prev?: Registry,
): { session: S; reason: string }[] {
  const out: { session: S; reason: string }[] = [];
  const sameDenylist = prev !== undefined && prev.denylist === reg.denylist;
  for (const s of sessions) {
    if (sameDenylist && unchangedUnit(prev, reg, s.identity.serial)) continue;
    const a = admitDeviceVlan(reg, s.identity.serial, s.identity.vlan);
    if (!a.ok) out.push({ session: s, reason: `registry:${a.reason}` });
    else if (a.segment.vni !== s.identity.vni) out.push({ session: s, reason: 'segment-changed' });
  }
  return out;
}

function unchangedUnit(prev: Registry, reg: Registry, serial: string): boolean {
  const d = reg.devices[serial];
  if (d === undefined || d !== prev.devices[serial]) return false;
  return d.tenant !== undefined && reg.tenants[d.tenant] === prev.tenants[d.tenant];
}

export interface MtuFinding {
  segment: string;
  vni: number;
  vtepPathMtu: number;
  /** The VTEP path cannot carry 1514-byte inner frames (needs minVtepPathMtu). */
  tooSmall: boolean;
}

/** One finding per segment: 1514 + 8 VXLAN + 8 UDP + 20 IPv4 needs an IP MTU of 1550 on the fabric. */
export function mtuFindings(tenants: Iterable<string>, reg: Registry, minVtepPathMtu: number): MtuFinding[] {
  const out: MtuFinding[] = [];
  for (const tname of tenants) {
    for (const [sname, s] of Object.entries(reg.tenants[tname]?.segments ?? {})) {
      out.push({ segment: `${tname}/${sname}`, vni: s.vni, vtepPathMtu: s.vtepPathMtu, tooSmall: s.vtepPathMtu < minVtepPathMtu });
    }
  }
  return out;
}
