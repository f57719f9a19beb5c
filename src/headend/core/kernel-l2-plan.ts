// SPDX-License-Identifier: UNLICENSED
// The kernel L2 engine's decisions as iproute2 batch lines (docs/headend.md, "The kernel L2 engine"):
// per segment a Linux bridge and a VXLAN device (flood-and-learn, one all-zeros FDB entry per VTEP for
// BUM copies), per session a TAP port of its segment's bridge, isolated unless the segment is multi-site
// (split horizon: isolated ports reach the VXLAN port only). No device of ours gets an IPv6 link-local
// address: a headend must never speak into a tenant's LAN. Pure: the adapters run the lines.
import type { SegmentInfo } from './forwarder.js';

export interface KernelL2Options {
  /** Device name prefix (<= 4 bytes): several headends may share one host's namespace. */
  prefix: string;
  /** The VXLAN source address; '0.0.0.0' or '::' lets the kernel choose. */
  localAddress: string;
  /** UDP port of VXLAN, both ways. */
  port: number;
  /** MAC ageing on the bridges, ms. */
  ageMs: number;
}

export const bridgeName = (prefix: string, vni: number): string => `${prefix}b${vni}`;
export const vxlanName = (prefix: string, vni: number): string => `${prefix}x${vni}`;
/** A session's TAP: worker (0 the only process) and a per-process counter, base 36, within 15 bytes. */
export const portName = (prefix: string, worker: number, n: number): string => `${prefix}${worker.toString(36)}t${n.toString(36)}`;

export interface SegmentPlan {
  /** `ip -batch` lines, in order. */
  ip: string[];
  /** `bridge -batch` lines, after the ip lines. */
  bridge: string[];
}

const isAny = (a: string): boolean => a === '0.0.0.0' || a === '::' || a === '';

/** A segment's devices, created whole; `File exists` on a device is the only failure a caller may ignore. */
function createSegment(o: KernelL2Options, s: SegmentInfo, ip: string[], bridge: string[]): void {
  const br = bridgeName(o.prefix, s.vni);
  const vx = vxlanName(o.prefix, s.vni);
  // Centiseconds; multicast snooping off: BUM frames reach every port, as the userspace switch does.
  ip.push(`link add ${br} type bridge ageing_time ${Math.round(o.ageMs / 10)} mcast_snooping 0`);
  ip.push(`link set dev ${br} addrgenmode none`);
  ip.push(`link add ${vx} type vxlan id ${s.vni} dstport ${o.port}${isAny(o.localAddress) ? '' : ` local ${o.localAddress}`}`);
  ip.push(`link set dev ${vx} addrgenmode none`);
  ip.push(`link set dev ${vx} master ${br}`);
  ip.push(`link set dev ${vx} up`);
  ip.push(`link set dev ${br} up`);
  for (const v of s.vteps) bridge.push(`fdb append 00:00:00:00:00:00 dev ${vx} dst ${v}`);
}

/**
 * From the segments in place (`before`, empty at start) to the registry's: new segments created, VTEPs
 * added and removed, segments gone deleted (their sessions were closed by the registry change). Only the
 * process that owns the devices (the only one, or the primary of several workers) runs this.
 */
export function planSegments(o: KernelL2Options, before: ReadonlyMap<number, SegmentInfo>, after: readonly SegmentInfo[]): SegmentPlan {
  const ip: string[] = [];
  const bridge: string[] = [];
  const seen = new Set<number>();
  for (const s of after) {
    seen.add(s.vni);
    const old = before.get(s.vni);
    if (!old) {
      createSegment(o, s, ip, bridge);
      continue;
    }
    const vx = vxlanName(o.prefix, s.vni);
    for (const v of s.vteps) if (!old.vteps.includes(v)) bridge.push(`fdb append 00:00:00:00:00:00 dev ${vx} dst ${v}`);
    for (const v of old.vteps) if (!s.vteps.includes(v)) bridge.push(`fdb del 00:00:00:00:00:00 dev ${vx} dst ${v}`);
  }
  for (const vni of before.keys()) {
    if (seen.has(vni)) continue;
    ip.push(`link del dev ${vxlanName(o.prefix, vni)}`);
    ip.push(`link del dev ${bridgeName(o.prefix, vni)}`);
  }
  return { ip, bridge };
}

/**
 * A session's TAP, created persistent so that closing its descriptor is cheap (a non-persistent TAP
 * unregisters on close, one RCU grace period, ~20 ms, each; thousands at a fleet's disconnect would
 * hold the loop for seconds). It joins its segment's bridge, isolated unless sessions of the segment
 * may talk; the process opens it once these lines ran.
 */
export function planPort(prefix: string, name: string, s: SegmentInfo): string[] {
  return [
    `tuntap add dev ${name} mode tap`,
    `link set dev ${name} addrgenmode none`,
    `link set dev ${name} master ${bridgeName(prefix, s.vni)}`,
    `link set dev ${name} type bridge_slave isolated ${s.multiSite ? 'off' : 'on'} learning on`,
    `link set dev ${name} up`,
  ];
}

/**
 * Ports whose sessions ended, deleted together: moved into the process's own device group and the group
 * deleted in one request, so the kernel waits out one grace period for all of them, not one each.
 */
export function planPortRemoval(names: readonly string[], group: number): string[] {
  if (names.length === 0) return [];
  return [...names.map((n) => `link set dev ${n} down group ${group}`), `link delete group ${group}`];
}

/** The device group a process's doomed ports pass through: its own, from the prefix and the worker index. */
export function removalGroup(prefix: string, worker: number): number {
  let h = 0x811c9dc5;
  for (const c of prefix) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  // Above the groups people number by hand, never 0 (the default group every device starts in).
  return 0x4000_0000 + ((h & 0xffff) << 8) + (worker & 0xff) + 1;
}

/**
 * Ports left by a process that ended without removing them (kill -9, a crash), from `ip -d -j link
 * show`: every TAP of the prefix, or only worker `worker`'s.
 */
export function leftoverPorts(prefix: string, links: unknown, worker?: number): string[] {
  const re = new RegExp(`^${prefix}${worker === undefined ? '[0-9a-z]+' : worker.toString(36)}t[0-9a-z]+$`);
  const out: string[] = [];
  for (const l of Array.isArray(links) ? (links as unknown[]) : []) {
    const o = l as { ifname?: unknown; linkinfo?: { info_kind?: unknown } };
    if (typeof o.ifname === 'string' && re.test(o.ifname) && o.linkinfo?.info_kind === 'tun') out.push(o.ifname);
  }
  return out;
}

/** A segment's multi-site flag changed: its ports' isolation follows. */
export function planIsolation(names: Iterable<string>, multiSite: boolean): string[] {
  return [...names].map((n) => `link set dev ${n} type bridge_slave isolated ${multiSite ? 'off' : 'on'}`);
}

/** The config's prefix: short enough for `<prefix><worker>t<counter>` and `<prefix>b<vni>` in 15 bytes. */
export function checkPrefix(prefix: string): string | null {
  return /^[a-z][a-z0-9]{0,3}$/.test(prefix) ? null : 'must be 1 to 4 lowercase letters or digits, starting with a letter';
}

/**
 * The segments already in the kernel (a restart, a crash): from `ip -d -j link show` and
 * `bridge -j fdb show`, the VNIs whose bridge and VXLAN device both exist, with their VTEP entries.
 * planSegments() against them removes what the registry no longer holds, VTEPs included.
 */
export function kernelSegments(prefix: string, links: unknown, fdb: unknown): Map<number, SegmentInfo> {
  const kinds = new Map<string, string>();
  for (const l of Array.isArray(links) ? (links as unknown[]) : []) {
    const o = l as { ifname?: unknown; linkinfo?: { info_kind?: unknown } };
    if (typeof o.ifname === 'string') kinds.set(o.ifname, String(o.linkinfo?.info_kind ?? ''));
  }
  const out = new Map<number, SegmentInfo>();
  const vx = new RegExp(`^${prefix}x(\\d+)$`);
  for (const [name, kind] of kinds) {
    const m = vx.exec(name);
    if (!m || kind !== 'vxlan') continue;
    const vni = Number(m[1]);
    if (kinds.get(bridgeName(prefix, vni)) !== 'bridge') continue;
    out.set(vni, { vni, name: `kernel/${vni}`, vteps: [], multiSite: false });
  }
  for (const e of Array.isArray(fdb) ? (fdb as unknown[]) : []) {
    const o = e as { mac?: unknown; ifname?: unknown; dst?: unknown };
    if (o.mac !== '00:00:00:00:00:00' || typeof o.ifname !== 'string' || typeof o.dst !== 'string') continue;
    const m = vx.exec(o.ifname);
    const s = m ? out.get(Number(m[1])) : undefined;
    if (s) (s.vteps as string[]).push(o.dst);
  }
  return out;
}
