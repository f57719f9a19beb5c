// SPDX-License-Identifier: UNLICENSED
// ARP (docs/l2-policy.md, rule 8, IPv4): learn bindings from requests, replies and GARPs on both sides,
// keep DC-side claims for contested or split-brain IPs from the LAN, and answer a broadcast request from
// the LAN locally for a fresh DC-side binding (RFC 9161 semantics); an unanswered one is a miss, which
// crosses the tunnel rate-limited. Probes and GARPs are announcements: never answered, never limited.
import { afterObserve } from './announcements.js';
import { ARP_OP_REPLY, encodeArp, parseArp } from './arp.js';
import { ANNOUNCE, blocksClaim, learnableIpv4, learnableMac, type PolicyContext, type PolicyDecision } from './context.js';
import type { DirectionCounters } from './counters.js';
import { ipv4ToString } from './ipv4.js';
import { BROADCAST_MAC_KEY } from '../../../shared/l2/mac.js';
import type { NeighbourKey } from './neighbour-table.js';
import type { FrameSide } from './side.js';

/** Returns the decision for an ARP frame, or null when it goes on to forwarding. */
export function onArp(x: PolicyContext, frame: Uint8Array, side: FrameSide, c: DirectionCounters, now: number): PolicyDecision | null {
  const a = x.arp;
  const bad = parseArp(frame, x.eth.l3Offset, a);
  if (bad === 'arp-unsupported') {
    // Not Ethernet/IPv4 ARP (RARP, other hardware): nothing to learn or proxy; it crosses as opaque BUM.
    x.counters.events['arp-unsupported-forwarded']++;
    return null;
  }
  if (bad !== null) return x.drop(c, bad);
  const kind = a.kind;
  if (kind === 'probe' || kind === 'gratuitous') x.klass = ANNOUNCE;
  if (x.ownIpv4(a.targetIp) || (a.senderIp !== 0 && x.ownIpv4(a.senderIp))) {
    if (a.senderIp !== 0 && x.ownIpv4(a.senderIp)) {
      // Own frames were dropped by MAC already: another host claims the Connector's address.
      x.alarms.raise('own-address-conflict', ipv4ToString(a.senderIp), now, `the ${side} side claims the Connector's own address`);
    }
    return x.drop(c, 'own-traffic');
  }
  if (x.tagged || kind === 'probe') return null; // probes bind nothing (sender 0.0.0.0); tagged: other domain
  // Junk bindings (a multicast MAC, a broadcast IP) would make the proxy answer with nonsense.
  if (!learnableMac(a.senderMac) || !learnableIpv4(a.senderIp)) return null;
  const res = x.neighbours.observe(a.senderIp, a.senderMac, side, kind === 'gratuitous' ? 'garp' : 'arp', now);
  afterObserve(x, res, a.senderIp, a.senderMac, side, false, now);
  if (side === 'tunnel' && x.config.splitBrainBlock && blocksClaim(res)) return x.drop(c, 'split-brain-claim');
  if (side === 'tunnel' || kind !== 'request' || x.eth.dst !== BROADCAST_MAC_KEY) return null;
  // A broadcast ARP request from the LAN: answer for a fresh DC-side binding, otherwise it is a miss.
  if (x.config.proxyArp) {
    const claim = x.neighbours.proxyClaim(a.targetIp, now, x.config.proxyFreshMs);
    if (claim !== null) {
      x.counters.events['arp-proxied']++;
      return x.reply(
        c,
        encodeArp({
          op: ARP_OP_REPLY,
          senderMac: claim.mac,
          senderIp: a.targetIp,
          targetMac: a.senderMac,
          targetIp: a.senderIp,
          ethDst: x.eth.src,
          ethSrc: claim.mac,
        }),
      );
    }
  }
  return miss(x, a.targetIp, frame.length, c, now);
}

/** A LAN ARP request / NS the proxy did not answer crosses the tunnel, rate-limited. */
export function miss(x: PolicyContext, target: NeighbourKey, len: number, c: DirectionCounters, now: number): PolicyDecision | null {
  // Requests for an address the LAN holds are not misses: the real host answers; they only take the
  // ordinary BUM buckets, so LAN-local chatter cannot use up the miss budget.
  if (x.neighbours.lookup(target, now)?.current === 'lan') return null;
  x.counters.events['proxy-miss']++;
  if (x.missBucket.take(len, now)) return null;
  x.alarms.raise('proxy-miss-rate', '', now, `more than ${x.config.missLimit.pps} unanswered ARP/NS per second from the LAN`);
  return x.drop(c, 'proxy-miss-rate');
}
