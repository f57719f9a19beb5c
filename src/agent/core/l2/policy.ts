// SPDX-License-Identifier: UNLICENSED
// The Layer-2 forwarding policy of the Connector: for each Ethernet frame, seen either on the LAN (the
// tap on br-lan) or coming out of the tunnel, decide whether it goes to the tunnel, to the LAN, is dropped
// (with a named reason) or is answered locally (ARP/ND proxy). Pure: the frame, its direction and `now`
// come in, the tables it owns are updated, a decision comes out. No I/O, no clock, no exceptions for bad
// frames. The common path (a unicast data frame) allocates nothing: views and the decision object are
// reused, so read the decision before the next call.
//
// Rule order (docs/l2-policy.md explains each rule and the reasons):
//  1. malformed Ethernet -> codec reason
//  2. 802.1D reserved group destination -> 'reserved-group'; a BPDU from the tunnel also blocks the tunnel
//  3. tunnel blocked by a BPDU -> 'tunnel-blocked' (both directions)
//  4. VLAN-tagged and vlanMode 'drop' -> 'vlan-tagged' (RFC 7348 section 6.1)
//  5. multicast or zero source MAC -> 'bad-src-mac'
//  6. to or from the Connector's own MACs -> 'own-traffic'
//  7. learn the source MAC on this side; a MAC frozen on the other side -> 'mac-frozen'
//  8. ARP / NS / NA: own IPs -> 'own-traffic'; learn bindings; split-brain guard (DC claims for an IP
//     the LAN holds are dropped; a quiet LAN holder is probed first); proxy or miss limit;
//     GARP, probes, unsolicited NA, DAD NS are "announcements": never proxied, never miss-limited
//     IPv4 / IPv6: own IPs -> 'own-traffic'; DHCP(v6) server messages from the tunnel -> dropped
//  9. forwarding: LAN unicast to a local MAC -> 'local-unicast'; known unicast passes; announcements
//     take the announce bucket; other BUM takes its class bucket (broadcast, unknown unicast, multicast)
import { AlarmSet } from './alarms.js';
import { ARP_OP_REPLY, encodeArp, newArpView, parseArp } from './arp.js';
import {
  newPolicyCounters,
  snapshotCounters,
  type DirectionCounters,
  type PolicyCounters,
  type PolicyCountersSnapshot,
  type PolicyDropReason,
} from './counters.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, newEthernetView, parseEthernet } from '../../../shared/l2/ethernet.js';
import { IP_PROTO_UDP, ipv4ToString, newIpv4View, parseIpv4Udp, UDP_PORT_DHCP_CLIENT, UDP_PORT_DHCP_SERVER } from './ipv4.js';
import { BPDU_MAC_KEY, BROADCAST_MAC_KEY, isMulticastKey, isReservedGroupKey, macKeyAt } from '../../../shared/l2/mac.js';
import { MacTable, type Side } from '../../../shared/l2/mac-table.js';
import { encodeNa, ipv6ToString, newNdView, parseNd, IPV6_HEADER_LEN } from './nd.js';
import { ipv6Key, NeighbourTable, type NeighbourKey, type NeighbourObserveResult } from './neighbour-table.js';
import { policyConfig, type PolicyConfig, type RateLimit } from './policy-config.js';
import { Reoriginator, type Toward } from './reoriginate.js';
import { TokenBucket } from './token-bucket.js';
import type { AlarmsSnapshot } from './alarms.js';

export type Direction = 'from-lan' | 'from-tunnel';

/**
 * - tunnel: send the frame (unchanged) into the tunnel (only for 'from-lan');
 * - lan: deliver the frame (unchanged) to the LAN (only for 'from-tunnel');
 * - drop: do nothing with it; `reason` says why;
 * - reply: the frame is consumed; send `replies` toward `replyToward` instead.
 */
export type PolicyAction = 'tunnel' | 'lan' | 'drop' | 'reply';

export interface PolicyDecision {
  action: PolicyAction;
  /** Set for 'drop', null otherwise. */
  reason: PolicyDropReason | null;
  /** Generated frames for 'reply' (empty otherwise). The array is reused: copy it to keep it. */
  replies: Buffer[];
  replyToward: Toward;
}

export interface PolicyTables {
  macs: MacTable;
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

// Traffic class of the frame being decided, set by the L3 rules.
const NORMAL = 0;
/** GARP, ARP probe, unsolicited NA, DAD NS: exempt from the miss and BUM limits, own bucket. */
const ANNOUNCE = 1;

// Bucket indexes: BUM class per direction.
const BC = 0;
const UU = 1;
const MC = 2;
const BUM_REASONS: readonly PolicyDropReason[] = ['bum-broadcast-rate', 'bum-unknown-unicast-rate', 'bum-multicast-rate'];
const BUM_SUBJECTS = [
  ['from-lan broadcast', 'from-lan unknown-unicast', 'from-lan multicast'],
  ['from-tunnel broadcast', 'from-tunnel unknown-unicast', 'from-tunnel multicast'],
] as const;

const bucket = (l: RateLimit, now: number): TokenBucket => new TokenBucket({ pps: l.pps, bps: l.bps }, now);

/** DC-side claims the split-brain guard keeps from the LAN. */
const blocksClaim = (res: NeighbourObserveResult): boolean => res === 'split-brain' || res === 'contested' || res === 'verify';

const learnableMac = (mac: number): boolean => mac !== 0 && !isMulticastKey(mac);
/** Not 0.0.0.0/8, loopback, multicast/reserved (224/3) or broadcast. */
const learnableIpv4 = (ip: number): boolean => {
  const first = ip >>> 24;
  return first !== 0 && first !== 127 && first < 224;
};

export class L2Policy {
  #config: PolicyConfig;
  readonly macs: MacTable;
  readonly neighbours: NeighbourTable;
  readonly reoriginator: Reoriginator;
  readonly alarms: AlarmSet;
  readonly counters: PolicyCounters = newPolicyCounters();

  readonly #eth = newEthernetView();
  readonly #arp = newArpView();
  readonly #nd = newNdView();
  readonly #ip4 = newIpv4View();
  readonly #d: PolicyDecision = { action: 'drop', reason: null, replies: [], replyToward: 'lan' };
  /** [from-lan, from-tunnel][broadcast, unknown unicast, multicast] */
  readonly #bum: readonly (readonly TokenBucket[])[];
  readonly #missBucket: TokenBucket;
  readonly #announce: readonly TokenBucket[];
  #klass = NORMAL;
  #blocked = false;
  #blockedUntil = 0;

  constructor(config: PolicyConfig, tables: Partial<PolicyTables> = {}, now = 0) {
    this.#config = config;
    this.alarms = tables.alarms ?? new AlarmSet();
    this.macs =
      tables.macs ??
      new MacTable({
        ageMs: config.macAgeMs,
        maxEntries: config.macMaxEntries,
        moveThreshold: config.macMoveThreshold,
        moveWindowMs: config.macMoveWindowMs,
        freezeMs: config.macFreezeMs,
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
    const b = (x: PolicyConfig['bumFromLan']): TokenBucket[] => [bucket(x.broadcast, now), bucket(x.unknownUnicast, now), bucket(x.multicast, now)];
    this.#bum = [b(config.bumFromLan), b(config.bumFromTunnel)];
    this.#missBucket = bucket(config.missLimit, now);
    this.#announce = [bucket(config.announceLimit, now), bucket(config.announceLimit, now)];
  }

  get config(): PolicyConfig {
    return this.#config;
  }

  /**
   * Replaces the Connector's own addresses (they change with DHCP, SLAAC, a new bridge MAC) without
   * losing tables, buckets, counters or a BPDU block. Throws ConfigError for a malformed IPv6 address.
   */
  setOwnAddresses(own: { macs: readonly number[]; ipv4: readonly number[]; ipv6: readonly Buffer[] }): void {
    this.#config = policyConfig({ ...this.#config, ownMacs: own.macs, ownIpv4: own.ipv4, ownIpv6: own.ipv6 });
  }

  get tunnelBlocked(): boolean {
    return this.#blocked;
  }

  /** Operator action: lift a BPDU block (also the only way out when bpduBlockMs is 0). */
  unblockTunnel(now: number): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.alarms.clear('bpdu-from-tunnel', '', now);
  }

  decide(frame: Uint8Array, direction: Direction, now: number): PolicyDecision {
    const fromLan = direction === 'from-lan';
    const c = fromLan ? this.counters.fromLan : this.counters.fromTunnel;
    const d = this.#d;
    d.reason = null;
    if (d.replies.length !== 0) d.replies.length = 0;
    d.replyToward = fromLan ? 'lan' : 'tunnel';
    this.#klass = NORMAL;
    const len = frame.length;
    c.frames++;
    c.bytes += len;

    const eth = this.#eth;
    const bad = parseEthernet(frame, eth);
    if (bad !== null) return this.#drop(c, bad);
    if (isReservedGroupKey(eth.dst)) {
      if (!fromLan && eth.dst === BPDU_MAC_KEY) {
        this.#block(now);
        return this.#drop(c, 'bpdu-from-tunnel');
      }
      return this.#drop(c, 'reserved-group');
    }
    if (this.#blocked) {
      if (now >= this.#blockedUntil) this.unblockTunnel(now);
      else return this.#drop(c, 'tunnel-blocked');
    }
    // A single tag with VID 0 is an 802.1p priority tag: the frame belongs to the untagged segment.
    const tagged = eth.vlanCount > 1 || (eth.vlanCount === 1 && (eth.vlanTci & 0x0fff) !== 0);
    if (tagged && this.#config.vlanMode === 'drop') return this.#drop(c, 'vlan-tagged');
    const src = eth.src;
    if (src === 0 || isMulticastKey(src)) return this.#drop(c, 'bad-src-mac');
    if (this.#ownMac(src) || this.#ownMac(eth.dst)) return this.#drop(c, 'own-traffic');

    const side: Side = fromLan ? 'local' : 'remote';
    const learned = this.macs.learn(src, side, 0, now);
    if (learned !== 'refreshed') {
      const ev = this.counters.events;
      switch (learned) {
        case 'new':
          ev['mac-learned']++;
          break;
        case 'moved':
          ev['mac-moved']++;
          break;
        case 'frozen':
          ev['mac-frozen']++;
          if (this.macs.lookup(src, now)?.side !== side) return this.#drop(c, 'mac-frozen');
          break;
        case 'ignored-frozen':
          return this.#drop(c, 'mac-frozen');
        case 'table-full':
          ev['mac-learn-refused-full']++;
          break;
      }
    }

    let l3: PolicyDecision | null = null;
    switch (eth.etherType) {
      case ETHERTYPE_ARP:
        l3 = this.#onArp(frame, fromLan, side, tagged, c, now);
        break;
      case ETHERTYPE_IPV4:
        l3 = this.#onIpv4(frame, fromLan, tagged, c, now);
        break;
      case ETHERTYPE_IPV6:
        l3 = this.#onIpv6(frame, fromLan, side, tagged, c, now);
        break;
    }
    if (l3 !== null) return l3;
    return this.#forward(c, fromLan, len, now);
  }

  /** Periodic housekeeping (every second or few): ages tables, lifts expired blocks, clears calm alarms. */
  tick(now: number): void {
    this.macs.sweep(now);
    this.neighbours.sweep(now);
    if (this.#blocked && now >= this.#blockedUntil) this.unblockTunnel(now);
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
      tunnelBlocked: this.#blocked,
      macEntries: this.macs.liveCount(now),
      neighbourEntries: this.neighbours.liveCount(now),
      reoriginatePending: this.reoriginator.pendingCount,
    });
  }

  // --- rules -------------------------------------------------------------------------------------------

  #onArp(frame: Uint8Array, fromLan: boolean, side: Side, tagged: boolean, c: DirectionCounters, now: number): PolicyDecision | null {
    const a = this.#arp;
    const bad = parseArp(frame, this.#eth.l3Offset, a);
    if (bad === 'arp-unsupported') {
      // Not Ethernet/IPv4 ARP (RARP, other hardware): nothing to learn or proxy; it crosses as opaque BUM.
      this.counters.events['arp-unsupported-forwarded']++;
      return null;
    }
    if (bad !== null) return this.#drop(c, bad);
    const kind = a.kind;
    if (kind === 'probe' || kind === 'gratuitous') this.#klass = ANNOUNCE;
    if (this.#ownIpv4(a.targetIp) || (a.senderIp !== 0 && this.#ownIpv4(a.senderIp))) {
      if (a.senderIp !== 0 && this.#ownIpv4(a.senderIp)) {
        // Own frames were dropped by MAC already: another host claims the Connector's address.
        this.alarms.raise('own-address-conflict', ipv4ToString(a.senderIp), now, `the ${side} side claims the Connector's own address`);
      }
      return this.#drop(c, 'own-traffic');
    }
    if (tagged || kind === 'probe') return null; // probes bind nothing (sender 0.0.0.0); tagged: other domain
    // Junk bindings (a multicast MAC, a broadcast IP) would make the proxy answer with nonsense.
    if (!learnableMac(a.senderMac) || !learnableIpv4(a.senderIp)) return null;
    const res = this.neighbours.observe(a.senderIp, a.senderMac, side, kind === 'gratuitous' ? 'garp' : 'arp', now);
    this.#afterObserve(res, a.senderIp, a.senderMac, side, false, now);
    if (!fromLan && this.#config.splitBrainBlock && blocksClaim(res)) {
      return this.#drop(c, 'split-brain-claim');
    }
    if (!fromLan || kind !== 'request' || this.#eth.dst !== BROADCAST_MAC_KEY) return null;
    // A broadcast ARP request from the LAN: answer for a fresh remote binding, otherwise it is a miss.
    if (this.#config.proxyArp) {
      const claim = this.neighbours.proxyClaim(a.targetIp, now, this.#config.proxyFreshMs);
      if (claim !== null) {
        this.counters.events['arp-proxied']++;
        return this.#reply(
          c,
          encodeArp({
            op: ARP_OP_REPLY,
            senderMac: claim.mac,
            senderIp: a.targetIp,
            targetMac: a.senderMac,
            targetIp: a.senderIp,
            ethDst: this.#eth.src,
            ethSrc: claim.mac,
          }),
        );
      }
    }
    return this.#miss(a.targetIp, frame.length, c, now);
  }

  #onIpv4(frame: Uint8Array, fromLan: boolean, tagged: boolean, c: DirectionCounters, now: number): PolicyDecision | null {
    const ip = this.#ip4;
    const bad = parseIpv4Udp(frame, this.#eth.l3Offset, ip);
    if (bad !== null) return this.#drop(c, bad);
    if (this.#config.ownIpv4.length !== 0 && (this.#ownIpv4(ip.src) || this.#ownIpv4(ip.dst))) return this.#drop(c, 'own-traffic');
    if (
      !fromLan &&
      !this.#config.allowDhcpFromTunnel &&
      ip.protocol === IP_PROTO_UDP &&
      ip.srcPort === UDP_PORT_DHCP_SERVER &&
      ip.dstPort === UDP_PORT_DHCP_CLIENT
    ) {
      return this.#drop(c, 'dhcp-server-from-tunnel');
    }
    if (this.#config.learnFromDhcp && !tagged && ip.srcPort === UDP_PORT_DHCP_SERVER && ip.dstPort === UDP_PORT_DHCP_CLIENT) {
      this.#learnDhcpAck(frame, ip.l4Offset + 8, ip.l4Offset + (ip.totalLen - ip.headerLen), now);
    }
    return null;
  }

  /**
   * DHCP ACK (RFC 2131/2132): binds yiaddr to chaddr on the side where chaddr was learned. Only ACKs the
   * policy lets through get here, so a rogue DC server blocked by the DHCP guard teaches nothing.
   */
  #learnDhcpAck(frame: Uint8Array, b: number, end: number, now: number): void {
    const stop = Math.min(end, frame.length);
    if (stop - b < 244 || frame[b] !== 2 || frame[b + 1] !== 1 || frame[b + 2] !== 6) return;
    if (frame[b + 236] !== 0x63 || frame[b + 237] !== 0x82 || frame[b + 238] !== 0x53 || frame[b + 239] !== 0x63) return;
    let ack = false;
    for (let o = b + 240; o < stop; ) {
      const code = frame[o] ?? 255;
      if (code === 255) break;
      if (code === 0) {
        o++;
        continue;
      }
      const len = frame[o + 1] ?? 0;
      if (code === 53 && len === 1) {
        ack = frame[o + 2] === 5;
        break;
      }
      o += 2 + len;
    }
    if (!ack) return;
    const yiaddr = (((frame[b + 16] ?? 0) << 24) | ((frame[b + 17] ?? 0) << 16) | ((frame[b + 18] ?? 0) << 8) | (frame[b + 19] ?? 0)) >>> 0;
    const chaddr = macKeyAt(frame, b + 28);
    if (!learnableIpv4(yiaddr) || !learnableMac(chaddr)) return;
    const client = this.macs.lookup(chaddr, now);
    if (client === undefined) return;
    const res = this.neighbours.observe(yiaddr, chaddr, client.side, 'dhcp', now);
    this.#afterObserve(res, yiaddr, chaddr, client.side, false, now);
  }

  #onIpv6(frame: Uint8Array, fromLan: boolean, side: Side, tagged: boolean, c: DirectionCounters, now: number): PolicyDecision | null {
    const l3 = this.#eth.l3Offset;
    if (frame.length - l3 < IPV6_HEADER_LEN) return this.#drop(c, 'ipv6-short');
    const nd = this.#nd;
    const r = parseNd(frame, l3, nd);
    if (r === 'not-nd') {
      if (this.#ownIpv6At(frame, l3 + 8) || this.#ownIpv6At(frame, l3 + 24)) return this.#drop(c, 'own-traffic');
      // DHCPv6 server -> client (UDP 547 -> 546), when UDP follows the fixed header directly.
      if (!fromLan && !this.#config.allowDhcpFromTunnel && frame[l3 + 6] === IP_PROTO_UDP && frame.length - l3 >= IPV6_HEADER_LEN + 8) {
        const sp = ((frame[l3 + 40] ?? 0) << 8) | (frame[l3 + 41] ?? 0);
        const dp = ((frame[l3 + 42] ?? 0) << 8) | (frame[l3 + 43] ?? 0);
        if (sp === 547 && dp === 546) return this.#drop(c, 'dhcp-server-from-tunnel');
      }
      return null;
    }
    if (r !== null) return this.#drop(c, r);
    const kind = nd.kind;
    if (kind === 'dad-ns' || kind === 'na-unsolicited') this.#klass = ANNOUNCE;
    const srcOwn = kind !== 'dad-ns' && this.#ownIpv6At(nd.srcIp, 0);
    if (srcOwn || this.#ownIpv6At(nd.targetIp, 0)) {
      if (srcOwn || nd.type === 136) {
        this.alarms.raise('own-address-conflict', ipv6ToString(srcOwn ? nd.srcIp : nd.targetIp), now, `the ${side} side claims the Connector's own address`);
      }
      return this.#drop(c, 'own-traffic');
    }
    if (tagged || kind === 'dad-ns') return null; // DAD binds nothing (source ::); tagged: other domain
    if (kind === 'ns') {
      if (nd.linkAddr >= 0 && learnableMac(nd.linkAddr) && nd.srcIp[0] !== 0xff) {
        const key = ipv6Key(nd.srcIp);
        const res = this.neighbours.observe(key, nd.linkAddr, side, 'nd', now);
        this.#afterObserve(res, key, nd.linkAddr, side, false, now);
        if (!fromLan && this.#config.splitBrainBlock && blocksClaim(res)) return this.#drop(c, 'split-brain-claim');
      }
      if (!fromLan || !isMulticastKey(this.#eth.dst)) return null; // unicast NS (NUD) goes to the real host
      const target = ipv6Key(nd.targetIp);
      if (this.#config.proxyNd) {
        const claim = this.neighbours.proxyClaim(target, now, this.#config.proxyFreshMs);
        if (claim !== null) {
          this.counters.events['nd-proxied']++;
          return this.#reply(
            c,
            encodeNa({
              srcMac: claim.mac,
              srcIp: nd.targetIp,
              targetIp: nd.targetIp,
              dstIp: nd.srcIp,
              ethDst: this.#eth.src,
              router: claim.router,
              solicited: true,
              // RFC 4861 7.2.4: Override unless the target is an anycast address; we proxy unicast only.
              override: true,
            }),
          );
        }
      }
      return this.#miss(target, frame.length, c, now);
    }
    // NA: binds the target to the TLLA (or, when the option is omitted, to the sender's MAC).
    const mac = nd.linkAddr >= 0 ? nd.linkAddr : this.#eth.src;
    if (!learnableMac(mac)) return null;
    const key = ipv6Key(nd.targetIp);
    const res = this.neighbours.observe(key, mac, side, 'nd', now, nd.router);
    this.#afterObserve(res, key, mac, side, nd.router, now);
    if (!fromLan && this.#config.splitBrainBlock && blocksClaim(res)) return this.#drop(c, 'split-brain-claim');
    return null;
  }

  /** A LAN ARP request / NS the proxy did not answer crosses the tunnel, rate-limited. */
  #miss(target: NeighbourKey, len: number, c: DirectionCounters, now: number): PolicyDecision | null {
    // Requests for an address the LAN holds are not misses: the real host answers; they only take the
    // ordinary BUM buckets, so LAN-local chatter cannot use up the miss budget.
    if (this.neighbours.lookup(target, now)?.current === 'local') return null;
    this.counters.events['proxy-miss']++;
    if (this.#missBucket.take(len, now)) return null;
    this.alarms.raise('proxy-miss-rate', '', now, `more than ${this.#config.missLimit.pps} unanswered ARP/NS per second from the LAN`);
    return this.#drop(c, 'proxy-miss-rate');
  }

  #afterObserve(res: NeighbourObserveResult, key: NeighbourKey, mac: number, side: Side, router: boolean, now: number): void {
    const ev = this.counters.events;
    switch (res) {
      case 'new':
        ev['neighbour-learned']++;
        break;
      case 'moved':
        ev['neighbour-moved']++;
        // Announce on behalf of the new holder toward the side that still has the old MAC cached.
        if (this.reoriginator.schedule({ key, mac, toward: side === 'remote' ? 'lan' : 'tunnel', router }, now)) ev['reoriginate-scheduled']++;
        else ev['reoriginate-refused']++;
        break;
      case 'contested':
        ev['neighbour-contested']++;
        break;
      case 'verify': {
        ev['neighbour-contested']++;
        const holder = this.neighbours.lookup(key, now)?.local;
        if (holder && this.reoriginator.scheduleVerify(key, holder.mac, mac, now)) ev['neighbour-verify-probe']++;
        break;
      }
      case 'split-brain':
        ev['neighbour-split-brain']++;
        // A pending announcement for this IP would take a side in the conflict: stop it.
        this.reoriginator.cancel(key);
        break;
      case 'table-full':
        ev['neighbour-learn-refused-full']++;
        break;
      case 'static-conflict':
        ev['neighbour-static-conflict']++;
        break;
      case 'refreshed':
        break;
    }
  }

  #forward(c: DirectionCounters, fromLan: boolean, len: number, now: number): PolicyDecision {
    const dst = this.#eth.dst;
    const dir = fromLan ? 0 : 1;
    let cls: number;
    if (!isMulticastKey(dst)) {
      const e = this.macs.lookup(dst, now);
      if (e !== undefined) {
        if (fromLan && e.side === 'local') return this.#drop(c, 'local-unicast');
        return this.#pass(c, fromLan, len);
      }
      cls = UU;
    } else {
      cls = dst === BROADCAST_MAC_KEY ? BC : MC;
    }
    if (this.#klass === ANNOUNCE) {
      if (this.#announce[dir]?.take(len, now) === false) {
        this.alarms.raise('bum-rate-exceeded', fromLan ? 'from-lan announcements' : 'from-tunnel announcements', now, 'announcement rate limit exceeded');
        return this.#drop(c, 'announce-rate');
      }
      this.counters.events['announcement-forwarded']++;
      return this.#pass(c, fromLan, len);
    }
    if (this.#bum[dir]?.[cls]?.take(len, now) === false) {
      this.alarms.raise('bum-rate-exceeded', BUM_SUBJECTS[dir as 0 | 1][cls as 0 | 1 | 2], now, 'BUM rate limit exceeded');
      return this.#drop(c, BUM_REASONS[cls] ?? 'bum-broadcast-rate');
    }
    return this.#pass(c, fromLan, len);
  }

  // --- helpers -----------------------------------------------------------------------------------------

  #pass(c: DirectionCounters, fromLan: boolean, len: number): PolicyDecision {
    const d = this.#d;
    d.action = fromLan ? 'tunnel' : 'lan';
    c.forwarded++;
    c.forwardedBytes += len;
    return d;
  }

  #drop(c: DirectionCounters, reason: PolicyDropReason): PolicyDecision {
    const d = this.#d;
    d.action = 'drop';
    d.reason = reason;
    c.drops[reason]++;
    return d;
  }

  #reply(c: DirectionCounters, frame: Buffer): PolicyDecision {
    const d = this.#d;
    d.action = 'reply';
    d.replies.push(frame);
    c.answered++;
    return d;
  }

  #block(now: number): void {
    this.#blockedUntil = this.#config.bpduBlockMs > 0 ? now + this.#config.bpduBlockMs : Infinity;
    if (!this.#blocked) {
      this.#blocked = true;
      this.counters.events['tunnel-blocked-by-bpdu']++;
    }
    this.alarms.raise('bpdu-from-tunnel', '', now, 'a BPDU arrived from the tunnel (loop or a bridge running STP in the DC): the tunnel is blocked');
  }

  #ownMac(key: number): boolean {
    const own = this.#config.ownMacs;
    for (let i = 0; i < own.length; i++) if (own[i] === key) return true;
    return false;
  }

  #ownIpv4(ip: number): boolean {
    const own = this.#config.ownIpv4;
    for (let i = 0; i < own.length; i++) if (own[i] === ip) return true;
    return false;
  }

  #ownIpv6At(buf: Uint8Array, off: number): boolean {
    const own = this.#config.ownIpv6;
    outer: for (let i = 0; i < own.length; i++) {
      const o = own[i];
      if (o === undefined) continue;
      for (let j = 0; j < 16; j++) if (o[j] !== buf[off + j]) continue outer;
      return true;
    }
    return false;
  }
}
