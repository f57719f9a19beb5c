// SPDX-License-Identifier: UNLICENSED
// Forwarding (docs/l2-policy.md, rules 7 and 9): learn the source MAC on the side the frame came from
// (a MAC frozen on the other side is dropped), then pass known unicast, keep LAN-to-LAN unicast off the
// WAN, and rate-limit what floods: announcements take their own bucket, other BUM the bucket of its class
// (broadcast, unknown unicast, multicast) per direction.
import { ANNOUNCE, type PolicyContext, type PolicyDecision } from './context.js';
import type { DirectionCounters, PolicyDropReason } from './counters.js';
import { BROADCAST_MAC_KEY, isMulticastKey } from '../../../shared/l2/mac.js';
import type { PolicyConfig, RateLimit } from './policy-config.js';
import type { FrameSide } from './side.js';
import { TokenBucket } from './token-bucket.js';

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

/** The flood budgets: [from the LAN, from the tunnel] x [broadcast, unknown unicast, multicast], and announcements. */
export class FloodBuckets {
  readonly bum: readonly (readonly TokenBucket[])[];
  readonly announce: readonly TokenBucket[];

  constructor(config: PolicyConfig, now: number) {
    const b = (x: PolicyConfig['bumFromLan']): TokenBucket[] => [
      bucket(x.broadcast, now),
      bucket(x.unknownUnicast, now),
      bucket(x.multicast, now),
    ];
    this.bum = [b(config.bumFromLan), b(config.bumFromTunnel)];
    this.announce = [bucket(config.announceLimit, now), bucket(config.announceLimit, now)];
  }
}

/** Rule 7: learns the source MAC on `side`; returns a drop for a MAC frozen on the other side, else null. */
export function learnSource(x: PolicyContext, side: FrameSide, c: DirectionCounters, now: number): PolicyDecision | null {
  const src = x.eth.src;
  const learned = x.macs.learn(src, side, 0, now);
  if (learned === 'refreshed') return null;
  const ev = x.counters.events;
  switch (learned) {
    case 'new':
      ev['mac-learned']++;
      break;
    case 'moved':
      ev['mac-moved']++;
      break;
    case 'frozen':
      ev['mac-frozen']++;
      if (x.macs.lookup(src, now)?.side !== side) return x.drop(c, 'mac-frozen');
      break;
    case 'ignored-frozen':
      return x.drop(c, 'mac-frozen');
    case 'table-full':
      ev['mac-learn-refused-full']++;
      break;
  }
  return null;
}

/** Rule 9: where a frame that passed every other rule goes. */
export function forward(
  x: PolicyContext,
  buckets: FloodBuckets,
  from: FrameSide,
  c: DirectionCounters,
  len: number,
  now: number,
): PolicyDecision {
  const dst = x.eth.dst;
  const dir = from === 'lan' ? 0 : 1;
  let cls: number;
  if (!isMulticastKey(dst)) {
    const e = x.macs.lookup(dst, now);
    if (e !== undefined) {
      if (from === 'lan' && e.side === 'lan') return x.drop(c, 'local-unicast');
      return x.pass(c, from, len);
    }
    cls = UU;
  } else {
    cls = dst === BROADCAST_MAC_KEY ? BC : MC;
  }
  if (x.klass === ANNOUNCE) {
    if (buckets.announce[dir]?.take(len, now) === false) {
      x.alarms.raise(
        'bum-rate-exceeded',
        dir === 0 ? 'from-lan announcements' : 'from-tunnel announcements',
        now,
        'announcement rate limit exceeded',
      );
      return x.drop(c, 'announce-rate');
    }
    x.counters.events['announcement-forwarded']++;
    return x.pass(c, from, len);
  }
  if (buckets.bum[dir]?.[cls]?.take(len, now) === false) {
    x.alarms.raise('bum-rate-exceeded', BUM_SUBJECTS[dir as 0 | 1][cls as 0 | 1 | 2], now, 'BUM rate limit exceeded');
    return x.drop(c, BUM_REASONS[cls] ?? 'bum-broadcast-rate');
  }
  return x.pass(c, from, len);
}
