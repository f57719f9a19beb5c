// SPDX-License-Identifier: UNLICENSED
// IPv6 (docs/l2-policy.md, rule 8): traffic to or from the Connector's own addresses, the DHCPv6 guard,
// and Neighbour Discovery: learn bindings from NS (source link-layer option) and NA (target link-layer
// option, or the sender's MAC), keep DC-side claims for contested or split-brain IPs from the LAN, and
// answer a multicast NS from the LAN with a solicited NA for a fresh DC-side binding (RFC 9161); a miss
// crosses rate-limited. DAD NS and unsolicited NA are announcements: never answered, never limited.
import { afterObserve } from './announcements.js';
import { miss } from './arp-proxy.js';
import { ANNOUNCE, blocksClaim, learnableMac, type PolicyContext, type PolicyDecision } from './context.js';
import type { DirectionCounters } from './counters.js';
import { dhcpv6FromTunnel } from './guards.js';
import { isMulticastKey } from '../../../shared/l2/mac.js';
import { encodeNa, ipv6ToString, IPV6_HEADER_LEN, parseNd } from './nd.js';
import { ipv6Key } from './neighbour-table.js';
import type { FrameSide } from './side.js';

/** Returns the decision for an IPv6 frame, or null when it goes on to forwarding. */
export function onIpv6(x: PolicyContext, frame: Uint8Array, side: FrameSide, c: DirectionCounters, now: number): PolicyDecision | null {
  const l3 = x.eth.l3Offset;
  if (frame.length - l3 < IPV6_HEADER_LEN) return x.drop(c, 'ipv6-short');
  const nd = x.nd;
  const r = parseNd(frame, l3, nd);
  if (r === 'not-nd') {
    if (x.ownIpv6At(frame, l3 + 8) || x.ownIpv6At(frame, l3 + 24)) return x.drop(c, 'own-traffic');
    if (side === 'tunnel' && dhcpv6FromTunnel(x, frame, l3)) return x.drop(c, 'dhcp-server-from-tunnel');
    return null;
  }
  if (r !== null) return x.drop(c, r);
  const kind = nd.kind;
  if (kind === 'dad-ns' || kind === 'na-unsolicited') x.klass = ANNOUNCE;
  const srcOwn = kind !== 'dad-ns' && x.ownIpv6At(nd.srcIp, 0);
  if (srcOwn || x.ownIpv6At(nd.targetIp, 0)) {
    if (srcOwn || nd.type === 136) {
      x.alarms.raise(
        'own-address-conflict',
        ipv6ToString(srcOwn ? nd.srcIp : nd.targetIp),
        now,
        `the ${side} side claims the Connector's own address`,
      );
    }
    return x.drop(c, 'own-traffic');
  }
  if (x.tagged || kind === 'dad-ns') return null; // DAD binds nothing (source ::); tagged: other domain
  if (kind === 'ns') {
    if (nd.linkAddr >= 0 && learnableMac(nd.linkAddr) && nd.srcIp[0] !== 0xff) {
      const key = ipv6Key(nd.srcIp);
      const res = x.neighbours.observe(key, nd.linkAddr, side, 'nd', now);
      afterObserve(x, res, key, nd.linkAddr, side, false, now);
      if (side === 'tunnel' && x.config.splitBrainBlock && blocksClaim(res)) return x.drop(c, 'split-brain-claim');
    }
    if (side === 'tunnel' || !isMulticastKey(x.eth.dst)) return null; // unicast NS (NUD) goes to the real host
    const target = ipv6Key(nd.targetIp);
    if (x.config.proxyNd) {
      const claim = x.neighbours.proxyClaim(target, now, x.config.proxyFreshMs);
      if (claim !== null) {
        x.counters.events['nd-proxied']++;
        return x.reply(
          c,
          encodeNa({
            srcMac: claim.mac,
            srcIp: nd.targetIp,
            targetIp: nd.targetIp,
            dstIp: nd.srcIp,
            ethDst: x.eth.src,
            router: claim.router,
            solicited: true,
            // RFC 4861 7.2.4: Override unless the target is an anycast address; we proxy unicast only.
            override: true,
          }),
        );
      }
    }
    return miss(x, target, frame.length, c, now);
  }
  // NA: binds the target to the TLLA (or, when the option is omitted, to the sender's MAC).
  const mac = nd.linkAddr >= 0 ? nd.linkAddr : x.eth.src;
  if (!learnableMac(mac)) return null;
  const key = ipv6Key(nd.targetIp);
  const res = x.neighbours.observe(key, mac, side, 'nd', now, nd.router);
  afterObserve(x, res, key, mac, side, nd.router, now);
  if (side === 'tunnel' && x.config.splitBrainBlock && blocksClaim(res)) return x.drop(c, 'split-brain-claim');
  return null;
}
