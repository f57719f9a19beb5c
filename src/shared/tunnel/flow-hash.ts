// SPDX-License-Identifier: UNLICENSED
// Which inner flow an Ethernet frame belongs to, as a small integer, for the egress queue's flow queuing
// (RFC 8290): the 5-tuple for TCP/UDP/SCTP over IPv4 and IPv6 (addresses and protocol for other IP
// traffic and for non-first fragments), the MAC pair and EtherType for everything else. VLAN tags are
// skipped; the tag is part of the key. Every frame of one flow gets the same number, so a flow is never
// reordered; a hash collision only merges two flows' queues. Pure, allocation-free, never throws.

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const PORTS_PROTOCOLS = new Set([6, 17, 33, 132, 136]); // TCP, UDP, DCCP, SCTP, UDP-Lite

/** FNV-1a over bytes [from, to) of `f`, continuing from `h`. */
function mix(f: Uint8Array, from: number, to: number, h: number): number {
  for (let i = from; i < to && i < f.length; i++) h = Math.imul(h ^ (f[i] ?? 0), 0x01000193);
  return h;
}

/** The flow of `frame` in 0..buckets-1 (`buckets` a power of two), perturbed by `seed`. */
export function flowBucket(frame: Uint8Array, buckets: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  let off = 12;
  let type = ((frame[12] ?? 0) << 8) | (frame[13] ?? 0);
  for (let tags = 0; (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) && tags < 2; tags++) {
    h = mix(frame, off + 2, off + 4, h); // the VLAN ID: different VLANs are different flows
    off += 4;
    type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
  }
  const l3 = off + 2;
  if (type === ETHERTYPE_IPV4 && frame.length >= l3 + 20) {
    const ihl = ((frame[l3] ?? 0) & 0x0f) * 4;
    const proto = frame[l3 + 9] ?? 0;
    h = mix(frame, l3 + 9, l3 + 10, h);
    h = mix(frame, l3 + 12, l3 + 20, h); // addresses
    const fragOffset = (((frame[l3 + 6] ?? 0) & 0x1f) << 8) | (frame[l3 + 7] ?? 0);
    if (fragOffset === 0 && PORTS_PROTOCOLS.has(proto) && ihl >= 20) h = mix(frame, l3 + ihl, l3 + ihl + 4, h);
  } else if (type === ETHERTYPE_IPV6 && frame.length >= l3 + 40) {
    const next = frame[l3 + 6] ?? 0;
    h = mix(frame, l3 + 6, l3 + 7, h);
    h = mix(frame, l3 + 8, l3 + 40, h); // addresses
    // Ports only right after the fixed header; extension headers fall back to addresses + next header.
    if (PORTS_PROTOCOLS.has(next)) h = mix(frame, l3 + 40, l3 + 44, h);
  } else {
    h = mix(frame, 0, 12, h); // MAC pair
    h = mix(frame, off, off + 2, h);
  }
  // MurmurHash3's finaliser: nearby keys (ports one apart) land in unrelated buckets.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) & (buckets - 1);
}
