// SPDX-License-Identifier: UNLICENSED
// Counters of the Layer-2 policy as plain data. Every drop reason and event is known up front, so the
// counters are preallocated objects with fixed shapes (the hot path only increments numbers) and the
// names are stable: they become `status --json` fields and Prometheus label values unchanged.
import { ETHERNET_DROPS } from '../../../shared/l2/ethernet.js';
import { ARP_DROPS } from './arp.js';
import { ND_DROPS } from './nd.js';
import { IPV4_DROPS } from './ipv4.js';

/** Drops the policy itself decides (the codec ones are added below). */
export const POLICY_OWN_DROPS = [
  'vlan-tagged',
  'reserved-group',
  'bpdu-from-tunnel',
  'tunnel-blocked',
  'bad-src-mac',
  'own-traffic',
  'local-unicast',
  'mac-frozen',
  'proxy-miss-rate',
  'announce-rate',
  'dhcp-server-from-tunnel',
  'split-brain-claim',
  'bum-broadcast-rate',
  'bum-unknown-unicast-rate',
  'bum-multicast-rate',
  'ipv6-short',
] as const;

/** Every reason a frame can be dropped for: the policy's own and the codecs' (malformed frames). */
export const POLICY_DROPS = [...POLICY_OWN_DROPS, ...ETHERNET_DROPS, ...ARP_DROPS, ...ND_DROPS, ...IPV4_DROPS] as const;
export type PolicyDropReason = (typeof POLICY_DROPS)[number];

/** Things the policy did or saw, counted over both directions. */
export const POLICY_EVENTS = [
  'mac-learned',
  'mac-moved',
  'mac-frozen',
  'mac-learn-refused-full',
  'neighbour-learned',
  'neighbour-moved',
  'neighbour-contested',
  'neighbour-verify-probe',
  'neighbour-split-brain',
  'neighbour-learn-refused-full',
  'neighbour-static-conflict',
  'arp-proxied',
  'nd-proxied',
  'proxy-miss',
  'announcement-forwarded',
  'arp-unsupported-forwarded',
  'reoriginate-scheduled',
  'reoriginate-refused',
  'tunnel-blocked-by-bpdu',
] as const;
export type PolicyEvent = (typeof POLICY_EVENTS)[number];

export interface DirectionCounters {
  frames: number;
  bytes: number;
  /** Frames passed on: to the tunnel (from-lan) or to the LAN (from-tunnel). */
  forwarded: number;
  forwardedBytes: number;
  /** Frames consumed and answered locally (proxy replies). */
  answered: number;
  drops: Record<PolicyDropReason, number>;
}

export interface PolicyCounters {
  fromLan: DirectionCounters;
  fromTunnel: DirectionCounters;
  events: Record<PolicyEvent, number>;
}

export type PolicyCountersSnapshot = {
  readonly fromLan: Readonly<Omit<DirectionCounters, 'drops'> & { drops: Readonly<Record<PolicyDropReason, number>> }>;
  readonly fromTunnel: Readonly<Omit<DirectionCounters, 'drops'> & { drops: Readonly<Record<PolicyDropReason, number>> }>;
  readonly events: Readonly<Record<PolicyEvent, number>>;
};

function zeros<K extends string>(names: readonly K[]): Record<K, number> {
  const o = {} as Record<K, number>;
  for (const n of names) o[n] = 0;
  return o;
}

export function newDirectionCounters(): DirectionCounters {
  return { frames: 0, bytes: 0, forwarded: 0, forwardedBytes: 0, answered: 0, drops: zeros(POLICY_DROPS) };
}

export function newPolicyCounters(): PolicyCounters {
  return { fromLan: newDirectionCounters(), fromTunnel: newDirectionCounters(), events: zeros(POLICY_EVENTS) };
}

/** Total drops of one direction. */
export function totalDrops(c: Readonly<{ drops: Readonly<Record<PolicyDropReason, number>> }>): number {
  let n = 0;
  for (const r of POLICY_DROPS) n += c.drops[r];
  return n;
}

/** A deep frozen copy, safe to hand to status output while the live counters keep moving. */
export function snapshotCounters(c: PolicyCounters): PolicyCountersSnapshot {
  const dir = (d: DirectionCounters): PolicyCountersSnapshot['fromLan'] => Object.freeze({ ...d, drops: Object.freeze({ ...d.drops }) });
  return Object.freeze({ fromLan: dir(c.fromLan), fromTunnel: dir(c.fromTunnel), events: Object.freeze({ ...c.events }) });
}

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The snapshot as Prometheus-style samples (counters, `_total`). Zero drop reasons are included so a
 * dashboard sees every series from the start.
 */
export function countersToMetrics(s: PolicyCountersSnapshot, prefix = 'connector_l2'): MetricSample[] {
  const out: MetricSample[] = [];
  for (const [direction, d] of [
    ['from_lan', s.fromLan],
    ['from_tunnel', s.fromTunnel],
  ] as const) {
    out.push({ name: `${prefix}_frames_total`, labels: { direction }, value: d.frames });
    out.push({ name: `${prefix}_bytes_total`, labels: { direction }, value: d.bytes });
    out.push({ name: `${prefix}_forwarded_frames_total`, labels: { direction }, value: d.forwarded });
    out.push({ name: `${prefix}_forwarded_bytes_total`, labels: { direction }, value: d.forwardedBytes });
    out.push({ name: `${prefix}_answered_frames_total`, labels: { direction }, value: d.answered });
    for (const reason of POLICY_DROPS) out.push({ name: `${prefix}_drops_total`, labels: { direction, reason }, value: d.drops[reason] });
  }
  for (const event of POLICY_EVENTS) out.push({ name: `${prefix}_events_total`, labels: { event }, value: s.events[event] });
  return out;
}
