// SPDX-License-Identifier: UNLICENSED
// What every rule of the Layer-2 policy works on: the tables, counters, parsed views of the frame being
// decided and the one decision object the rules fill. Allocated once per policy; the views and the
// decision are reused for every frame, so a decision must be read before the next frame is decided.
import type { AlarmSet } from './alarms.js';
import { newArpView, type ArpView } from './arp.js';
import type { DirectionCounters, PolicyCounters, PolicyDropReason } from './counters.js';
import { newEthernetView, type EthernetView } from '../../../shared/l2/ethernet.js';
import { newIpv4View, type Ipv4View } from './ipv4.js';
import type { MacTable } from '../../../shared/l2/mac-table.js';
import { isMulticastKey } from '../../../shared/l2/mac.js';
import { newNdView, type NdView } from './nd.js';
import type { NeighbourObserveResult, NeighbourTable } from './neighbour-table.js';
import type { PolicyConfig } from './policy-config.js';
import type { Reoriginator } from './reoriginate.js';
import type { FrameSide } from './side.js';
import type { TokenBucket } from './token-bucket.js';

/**
 * - tunnel: send the frame (unchanged) into the tunnel (only for a frame from the LAN);
 * - lan: deliver the frame (unchanged) to the LAN (only for a frame from the tunnel);
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
  replyToward: FrameSide;
}

/** Traffic class of the frame being decided, set by the L3 rules. */
export const NORMAL = 0;
/** GARP, ARP probe, unsolicited NA, DAD NS: exempt from the miss and BUM limits, own bucket. */
export const ANNOUNCE = 1;

export class PolicyContext {
  readonly eth: EthernetView = newEthernetView();
  readonly arp: ArpView = newArpView();
  readonly nd: NdView = newNdView();
  readonly ip4: Ipv4View = newIpv4View();
  readonly d: PolicyDecision = { action: 'drop', reason: null, replies: [], replyToward: 'lan' };
  /** NORMAL or ANNOUNCE, for the frame being decided. */
  klass = NORMAL;
  /** The frame being decided carries a VLAN tag (not a priority tag): it belongs to another domain. */
  tagged = false;

  constructor(
    public config: PolicyConfig,
    readonly macs: MacTable<FrameSide>,
    readonly neighbours: NeighbourTable,
    readonly reoriginator: Reoriginator,
    readonly alarms: AlarmSet,
    readonly counters: PolicyCounters,
    /** Unanswered LAN ARP requests / NS crossing the tunnel (both families together). */
    readonly missBucket: TokenBucket,
  ) {}

  pass(c: DirectionCounters, from: FrameSide, len: number): PolicyDecision {
    const d = this.d;
    d.action = from === 'lan' ? 'tunnel' : 'lan';
    c.forwarded++;
    c.forwardedBytes += len;
    return d;
  }

  drop(c: DirectionCounters, reason: PolicyDropReason): PolicyDecision {
    const d = this.d;
    d.action = 'drop';
    d.reason = reason;
    c.drops[reason]++;
    return d;
  }

  reply(c: DirectionCounters, frame: Buffer): PolicyDecision {
    const d = this.d;
    d.action = 'reply';
    d.replies.push(frame);
    c.answered++;
    return d;
  }

  ownMac(key: number): boolean {
    const own = this.config.ownMacs;
    for (let i = 0; i < own.length; i++) if (own[i] === key) return true;
    return false;
  }

  ownIpv4(ip: number): boolean {
    const own = this.config.ownIpv4;
    for (let i = 0; i < own.length; i++) if (own[i] === ip) return true;
    return false;
  }

  ownIpv6At(buf: Uint8Array, off: number): boolean {
    const own = this.config.ownIpv6;
    outer: for (let i = 0; i < own.length; i++) {
      const o = own[i];
      if (o === undefined) continue;
      for (let j = 0; j < 16; j++) if (o[j] !== buf[off + j]) continue outer;
      return true;
    }
    return false;
  }
}

/** DC-side claims the split-brain guard keeps from the LAN. */
export const blocksClaim = (res: NeighbourObserveResult): boolean => res === 'split-brain' || res === 'contested' || res === 'verify';

export const learnableMac = (mac: number): boolean => mac !== 0 && !isMulticastKey(mac);

/** Not 0.0.0.0/8, loopback, multicast/reserved (224/3) or broadcast. */
export const learnableIpv4 = (ip: number): boolean => {
  const first = ip >>> 24;
  return first !== 0 && first !== 127 && first < 224;
};
