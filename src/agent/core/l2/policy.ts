// SPDX-License-Identifier: UNLICENSED
// The Layer-2 forwarding policy of the Connector: for each Ethernet frame, seen either on the LAN (the
// tap on br-lan) or coming out of the tunnel, decide whether it goes to the tunnel, to the LAN, is dropped
// (with a named reason) or is answered locally (ARP/ND proxy). Pure: the frame, its side and `now` come
// in, the tables it owns are updated, a decision comes out. No I/O, no clock, no exceptions for bad
// frames. The common path (a unicast data frame) allocates nothing: views and the decision object are
// reused, so read the decision before the next call.
//
// Rule order (docs/l2-policy.md explains each rule and the reasons), and the file holding each:
//  1-6. guards.ts: malformed Ethernet; 802.1D reserved groups (a BPDU from the tunnel also blocks the
//     tunnel); tunnel blocked; VLAN-tagged with vlanMode 'drop'; multicast or zero source MAC; to or
//     from the Connector's own MACs
//  7. forwarding.ts: learn the source MAC on this side; a MAC frozen on the other side -> 'mac-frozen'
//  8. arp-proxy.ts, nd-proxy.ts, guards.ts (IPv4): own IPs -> 'own-traffic'; learn bindings; split-brain
//     guard; proxy or miss limit; DHCP(v6) server messages from the tunnel -> dropped.
//     announcements.ts: what a learned binding triggers (re-origination, holder probes)
//  9. forwarding.ts: LAN unicast to a LAN MAC -> 'local-unicast'; known unicast passes; announcements
//     take the announce bucket; other BUM takes its class bucket (broadcast, unknown unicast, multicast)
import { AlarmSet, type AlarmsSnapshot } from './alarms.js';
import { onArp } from './arp-proxy.js';
import { NORMAL, PolicyContext, type PolicyDecision } from './context.js';
import { newPolicyCounters, snapshotCounters, type PolicyCounters, type PolicyCountersSnapshot } from './counters.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../../../shared/l2/ethernet.js';
import { FloodBuckets, forward, learnSource } from './forwarding.js';
import { BpduBlock, ethernetGuards, ipv4Guards } from './guards.js';
import { MacTable } from '../../../shared/l2/mac-table.js';
import { onIpv6 } from './nd-proxy.js';
import { NeighbourTable } from './neighbour-table.js';
import { policyConfig, type PolicyConfig } from './policy-config.js';
import { Reoriginator } from './reoriginate.js';
import type { FrameSide } from './side.js';
import { TokenBucket } from './token-bucket.js';

export type { PolicyAction, PolicyDecision } from './context.js';
export type { FrameSide } from './side.js';

export interface PolicyTables {
  macs: MacTable<FrameSide>;
  neighbours: NeighbourTable;
  reoriginator: Reoriginator;
  alarms: AlarmSet;
}

export interface PolicySnapshot {
  readonly counters: PolicyCountersSnapshot;
  readonly alarms: AlarmsSnapshot;
  readonly tunnelBlocked: boolean;
  readonly macEntries: number;
  readonly neighbourEntries: number;
  readonly reoriginatePending: number;
}

/** How long a rate-limit alarm stays raised after the last drop it was raised for. */
export const RATE_ALARM_HOLD_MS = 10_000;
/** How long an address-conflict alarm stays raised after the last conflicting claim. */
export const CONFLICT_ALARM_HOLD_MS = 300_000;

export class L2Policy {
  readonly macs: MacTable<FrameSide>;
  readonly neighbours: NeighbourTable;
  readonly reoriginator: Reoriginator;
  readonly alarms: AlarmSet;
  readonly counters: PolicyCounters = newPolicyCounters();
  readonly #x: PolicyContext;
  readonly #bpdu: BpduBlock;
  readonly #buckets: FloodBuckets;

  constructor(config: PolicyConfig, tables: Partial<PolicyTables> = {}, now = 0) {
    this.alarms = tables.alarms ?? new AlarmSet();
    this.macs =
      tables.macs ??
      new MacTable<FrameSide>({
        ageMs: config.macAgeMs,
        maxEntries: config.macMaxEntries,
        moveThreshold: config.macMoveThreshold,
        moveWindowMs: config.macMoveWindowMs,
        freezeMs: config.macFreezeMs,
        // A flapping MAC stays on the LAN: a loop or a drill VM cloning a production MAC cannot steal it.
        freezeSide: 'lan',
        alarms: this.alarms,
      });
    this.neighbours =
      tables.neighbours ??
      new NeighbourTable({
        ageMs: config.neighbourAgeMs,
        maxEntries: config.neighbourMaxEntries,
        splitBrainWindowMs: config.splitBrainWindowMs,
        verifyMs: config.holderVerifyMs,
        alarms: this.alarms,
      });
    this.reoriginator =
      tables.reoriginator ?? new Reoriginator({ copies: config.reoriginateCopies, intervalMs: config.reoriginateIntervalMs });
    const missBucket = new TokenBucket({ pps: config.missLimit.pps, bps: config.missLimit.bps }, now);
    this.#x = new PolicyContext(config, this.macs, this.neighbours, this.reoriginator, this.alarms, this.counters, missBucket);
    this.#bpdu = new BpduBlock(this.#x);
    this.#buckets = new FloodBuckets(config, now);
  }

  get config(): PolicyConfig {
    return this.#x.config;
  }

  /**
   * Whether DHCP server messages from the datacentre may reach the LAN: the unit's own setting, or the
   * segment's `allowDhcpFromDc` as the headend grants it in the hello-ack (`dhcp-from-dc`).
   */
  setDhcpFromDc(grantedByHeadend: boolean, unitSetting: boolean): void {
    const allow = unitSetting || grantedByHeadend;
    if (this.#x.config.allowDhcpFromTunnel !== allow) this.#x.config = policyConfig({ ...this.#x.config, allowDhcpFromTunnel: allow });
  }

  /**
   * Replaces the Connector's own addresses (they change with DHCP, SLAAC, a new bridge MAC) without
   * losing tables, buckets, counters or a BPDU block. Throws ConfigError for a malformed IPv6 address.
   */
  setOwnAddresses(own: { macs: readonly number[]; ipv4: readonly number[]; ipv6: readonly Buffer[] }): void {
    this.#x.config = policyConfig({ ...this.#x.config, ownMacs: own.macs, ownIpv4: own.ipv4, ownIpv6: own.ipv6 });
  }

  get tunnelBlocked(): boolean {
    return this.#bpdu.blocked;
  }

  /** Operator action: lift a BPDU block (also the only way out when bpduBlockMs is 0). */
  unblockTunnel(now: number): void {
    this.#bpdu.unblock(now);
  }

  decide(frame: Uint8Array, from: FrameSide, now: number): PolicyDecision {
    const x = this.#x;
    const c = from === 'lan' ? this.counters.fromLan : this.counters.fromTunnel;
    const d = x.d;
    d.reason = null;
    if (d.replies.length !== 0) d.replies.length = 0;
    d.replyToward = from;
    x.klass = NORMAL;
    x.tagged = false;
    const len = frame.length;
    c.frames++;
    c.bytes += len;

    const guarded = ethernetGuards(x, this.#bpdu, frame, from, c, now);
    if (guarded !== null) return guarded;
    const frozen = learnSource(x, from, c, now);
    if (frozen !== null) return frozen;
    let l3: PolicyDecision | null = null;
    switch (x.eth.etherType) {
      case ETHERTYPE_ARP:
        l3 = onArp(x, frame, from, c, now);
        break;
      case ETHERTYPE_IPV4:
        l3 = ipv4Guards(x, frame, from, c, now);
        break;
      case ETHERTYPE_IPV6:
        l3 = onIpv6(x, frame, from, c, now);
        break;
    }
    if (l3 !== null) return l3;
    return forward(x, this.#buckets, from, c, len, now);
  }

  /** Periodic housekeeping (every second or few): ages tables, lifts expired blocks, clears calm alarms. */
  tick(now: number): void {
    this.macs.sweep(now);
    this.neighbours.sweep(now);
    this.#bpdu.holds(now);
    this.alarms.clearIdle('bum-rate-exceeded', RATE_ALARM_HOLD_MS, now);
    this.alarms.clearIdle('proxy-miss-rate', RATE_ALARM_HOLD_MS, now);
    this.alarms.clearIdle('own-address-conflict', CONFLICT_ALARM_HOLD_MS, now);
    this.alarms.clearIdle('neighbour-static-conflict', CONFLICT_ALARM_HOLD_MS, now);
    this.alarms.clearIdle('alarm-overflow', CONFLICT_ALARM_HOLD_MS, now);
    this.alarms.prune(now);
  }

  /** Everything status output and metrics need, as frozen plain data. */
  snapshot(now: number): PolicySnapshot {
    return Object.freeze({
      counters: snapshotCounters(this.counters),
      alarms: this.alarms.snapshot(now),
      tunnelBlocked: this.#bpdu.blocked,
      macEntries: this.macs.liveCount(now),
      neighbourEntries: this.neighbours.liveCount(now),
      reoriginatePending: this.reoriginator.pendingCount,
    });
  }
}
