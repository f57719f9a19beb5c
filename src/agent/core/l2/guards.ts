// SPDX-License-Identifier: UNLICENSED
// The policy's guards (docs/l2-policy.md, rules 1-6 and the DHCP guard): what must never cross, whatever
// the tables say. Malformed frames, 802.1D reserved groups, a BPDU from the tunnel (which also blocks
// the tunnel), VLAN-tagged frames, bad source MACs, traffic to or from the Connector itself, and DHCP
// server messages from the DC side. DHCP ACKs that pass teach the neighbour table (RFC 2131/2132).
import { afterObserve } from './announcements.js';
import type { DirectionCounters } from './counters.js';
import { learnableIpv4, learnableMac, type PolicyContext, type PolicyDecision } from './context.js';
import { parseEthernet } from '../../../shared/l2/ethernet.js';
import { IP_PROTO_UDP, parseIpv4Udp, UDP_PORT_DHCP_CLIENT, UDP_PORT_DHCP_SERVER } from './ipv4.js';
import { BPDU_MAC_KEY, isMulticastKey, isReservedGroupKey, macKeyAt } from '../../../shared/l2/mac.js';
import { IPV6_HEADER_LEN } from './nd.js';
import type { FrameSide } from './side.js';

/** A BPDU from the tunnel means a loop or a DC bridge running STP: the tunnel stays blocked for a while. */
export class BpduBlock {
  blocked = false;
  until = 0;

  constructor(private readonly x: PolicyContext) {}

  block(now: number): void {
    const x = this.x;
    this.until = x.config.bpduBlockMs > 0 ? now + x.config.bpduBlockMs : Infinity;
    if (!this.blocked) {
      this.blocked = true;
      x.counters.events['tunnel-blocked-by-bpdu']++;
    }
    x.alarms.raise(
      'bpdu-from-tunnel',
      '',
      now,
      'a BPDU arrived from the tunnel (loop or a bridge running STP in the DC): the tunnel is blocked',
    );
  }

  unblock(now: number): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.x.alarms.clear('bpdu-from-tunnel', '', now);
  }

  /** Lifts a block whose time is up; true while the tunnel stays blocked. */
  holds(now: number): boolean {
    if (!this.blocked) return false;
    if (now < this.until) return true;
    this.unblock(now);
    return false;
  }
}

/**
 * Rules 1-6 on the Ethernet header: returns the drop decision, or null when the frame may go on (with
 * `x.eth` parsed and `x.tagged` set).
 */
export function ethernetGuards(
  x: PolicyContext,
  bpdu: BpduBlock,
  frame: Uint8Array,
  from: FrameSide,
  c: DirectionCounters,
  now: number,
): PolicyDecision | null {
  const eth = x.eth;
  const bad = parseEthernet(frame, eth);
  if (bad !== null) return x.drop(c, bad);
  if (isReservedGroupKey(eth.dst)) {
    if (from === 'tunnel' && eth.dst === BPDU_MAC_KEY) {
      bpdu.block(now);
      return x.drop(c, 'bpdu-from-tunnel');
    }
    return x.drop(c, 'reserved-group');
  }
  if (bpdu.blocked && bpdu.holds(now)) return x.drop(c, 'tunnel-blocked');
  // A single tag with VID 0 is an 802.1p priority tag: the frame belongs to the untagged segment.
  x.tagged = eth.vlanCount > 1 || (eth.vlanCount === 1 && (eth.vlanTci & 0x0fff) !== 0);
  if (x.tagged && x.config.vlanMode === 'drop') return x.drop(c, 'vlan-tagged');
  const src = eth.src;
  if (src === 0 || isMulticastKey(src)) return x.drop(c, 'bad-src-mac');
  if (x.ownMac(src) || x.ownMac(eth.dst)) return x.drop(c, 'own-traffic');
  return null;
}

/** IPv4: traffic to or from the Connector's own addresses, and the DHCP guard. */
export function ipv4Guards(x: PolicyContext, frame: Uint8Array, from: FrameSide, c: DirectionCounters, now: number): PolicyDecision | null {
  const ip = x.ip4;
  const bad = parseIpv4Udp(frame, x.eth.l3Offset, ip);
  if (bad !== null) return x.drop(c, bad);
  if (x.config.ownIpv4.length !== 0 && (x.ownIpv4(ip.src) || x.ownIpv4(ip.dst))) return x.drop(c, 'own-traffic');
  const dhcpServer = ip.protocol === IP_PROTO_UDP && ip.srcPort === UDP_PORT_DHCP_SERVER && ip.dstPort === UDP_PORT_DHCP_CLIENT;
  if (from === 'tunnel' && !x.config.allowDhcpFromTunnel && dhcpServer) return x.drop(c, 'dhcp-server-from-tunnel');
  if (x.config.learnFromDhcp && !x.tagged && ip.srcPort === UDP_PORT_DHCP_SERVER && ip.dstPort === UDP_PORT_DHCP_CLIENT) {
    learnDhcpAck(x, frame, ip.l4Offset + 8, ip.l4Offset + (ip.totalLen - ip.headerLen), now);
  }
  return null;
}

/** DHCPv6 server -> client (UDP 547 -> 546) from the tunnel, when UDP follows the fixed header directly. */
export function dhcpv6FromTunnel(x: PolicyContext, frame: Uint8Array, l3: number): boolean {
  if (x.config.allowDhcpFromTunnel || frame[l3 + 6] !== IP_PROTO_UDP || frame.length - l3 < IPV6_HEADER_LEN + 8) return false;
  const sp = ((frame[l3 + 40] ?? 0) << 8) | (frame[l3 + 41] ?? 0);
  const dp = ((frame[l3 + 42] ?? 0) << 8) | (frame[l3 + 43] ?? 0);
  return sp === 547 && dp === 546;
}

/**
 * DHCP ACK (RFC 2131/2132): binds yiaddr to chaddr on the side where chaddr was learned. Only ACKs the
 * policy lets through get here, so a rogue DC server blocked by the DHCP guard teaches nothing.
 */
function learnDhcpAck(x: PolicyContext, frame: Uint8Array, b: number, end: number, now: number): void {
  const stop = Math.min(end, frame.length);
  if (stop - b < 244 || frame[b] !== 2 || frame[b + 1] !== 1 || frame[b + 2] !== 6) return;
  if (frame[b + 236] !== 0x63 || frame[b + 237] !== 0x82 || frame[b + 238] !== 0x53 || frame[b + 239] !== 0x63) return;
  let ack = false;
  for (let o = b + 240; o < stop;) {
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
  const client = x.macs.lookup(chaddr, now);
  if (client === undefined) return;
  const res = x.neighbours.observe(yiaddr, chaddr, client.side, 'dhcp', now);
  afterObserve(x, res, yiaddr, chaddr, client.side, false, now);
}
