// SPDX-License-Identifier: UNLICENSED
// Just enough IPv4 (RFC 791) and UDP (RFC 768) for the forwarding policy: addresses, protocol and UDP ports
// (DHCP server->client is UDP 67 -> 68). A bridge does not validate L3 checksums, so parsing does not
// either; encoding computes them (for tests and VXLAN-in-UDP).
import { ConfigError } from '../../../shared/errors.js';
import { checksumAdd, checksumAddWord, checksumFinish } from './checksum.js';

export const IPV4_MIN_HEADER_LEN = 20;
export const UDP_HEADER_LEN = 8;
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_ICMPV6 = 58;
export const UDP_PORT_DHCP_SERVER = 67;
export const UDP_PORT_DHCP_CLIENT = 68;

export const IPV4_DROPS = ['ipv4-short', 'ipv4-bad-version', 'ipv4-bad-header-length', 'ipv4-bad-total-length', 'udp-short'] as const;
export type Ipv4Drop = (typeof IPV4_DROPS)[number];

/** Filled in place by parseIpv4Udp. */
export interface Ipv4View {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  headerLen: number;
  /** Total length from the header (the frame may be longer: Ethernet padding). */
  totalLen: number;
  /** Fragment offset in bytes; non-zero means no L4 header in this packet. */
  fragmentOffset: number;
  moreFragments: boolean;
  /** UDP ports for an unfragmented-first UDP packet, else -1. */
  srcPort: number;
  dstPort: number;
  /** Offset of the L4 header in the frame. */
  l4Offset: number;
}

export function newIpv4View(): Ipv4View {
  return {
    src: 0,
    dst: 0,
    protocol: 0,
    ttl: 0,
    headerLen: 0,
    totalLen: 0,
    fragmentOffset: 0,
    moreFragments: false,
    srcPort: -1,
    dstPort: -1,
    l4Offset: 0,
  };
}

const u32At = (b: Uint8Array, o: number): number =>
  (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0;
const u16At = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

/** Parses the IPv4 header at `l3Offset` and, for the first fragment of a UDP packet, the UDP ports. */
export function parseIpv4Udp(frame: Uint8Array, l3Offset: number, view: Ipv4View): Ipv4Drop | null {
  const avail = frame.length - l3Offset;
  if (l3Offset < 0 || avail < IPV4_MIN_HEADER_LEN) return 'ipv4-short';
  const vihl = frame[l3Offset] ?? 0;
  if (vihl >> 4 !== 4) return 'ipv4-bad-version';
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < IPV4_MIN_HEADER_LEN) return 'ipv4-bad-header-length';
  if (ihl > avail) return 'ipv4-short';
  const total = u16At(frame, l3Offset + 2);
  if (total < ihl) return 'ipv4-bad-total-length';
  if (total > avail) return 'ipv4-short';
  const frag = u16At(frame, l3Offset + 6);
  view.headerLen = ihl;
  view.totalLen = total;
  view.fragmentOffset = (frag & 0x1fff) * 8;
  view.moreFragments = (frag & 0x2000) !== 0;
  view.ttl = frame[l3Offset + 8] ?? 0;
  view.protocol = frame[l3Offset + 9] ?? 0;
  view.src = u32At(frame, l3Offset + 12);
  view.dst = u32At(frame, l3Offset + 16);
  view.l4Offset = l3Offset + ihl;
  view.srcPort = -1;
  view.dstPort = -1;
  if (view.protocol === IP_PROTO_UDP && view.fragmentOffset === 0) {
    if (total - ihl < UDP_HEADER_LEN) return 'udp-short';
    view.srcPort = u16At(frame, view.l4Offset);
    view.dstPort = u16At(frame, view.l4Offset + 2);
  }
  return null;
}

/** Dotted quad of a u32 address. */
export function ipv4ToString(ip: number): string {
  return `${(ip >>> 24) & 0xff}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** Parses a dotted quad for configuration into a u32; throws a ConfigError naming `key`. */
export function parseIpv4(text: string, key = 'ipv4'): number {
  const parts = text.trim().split('.');
  const bad = (): ConfigError => new ConfigError(key, `"${text}" is not an IPv4 address; write four decimal bytes like 192.0.2.10`);
  if (parts.length !== 4) throw bad();
  let ip = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw bad();
    const n = Number(p);
    if (n > 255) throw bad();
    ip = ip * 256 + n;
  }
  return ip;
}

export function writeIpv4(buf: Uint8Array, off: number, ip: number): void {
  buf[off] = (ip >>> 24) & 0xff;
  buf[off + 1] = (ip >>> 16) & 0xff;
  buf[off + 2] = (ip >>> 8) & 0xff;
  buf[off + 3] = ip & 0xff;
}

export interface Ipv4UdpSpec {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  ttl?: number;
  /** Identification field; 0 by default. */
  id?: number;
  /** Compute the UDP checksum (default true); false writes 0, which RFC 768 allows over IPv4. */
  udpChecksum?: boolean;
}

/** Builds an IPv4 packet (no Ethernet header) carrying one UDP datagram, DF set, checksums filled in. */
export function encodeIpv4Udp(spec: Ipv4UdpSpec): Buffer {
  const udpLen = UDP_HEADER_LEN + spec.payload.length;
  const total = IPV4_MIN_HEADER_LEN + udpLen;
  if (total > 0xffff) throw new RangeError(`IPv4 packet of ${total} bytes is too large`);
  const p = Buffer.alloc(total);
  p[0] = 0x45;
  p.writeUInt16BE(total, 2);
  p.writeUInt16BE((spec.id ?? 0) & 0xffff, 4);
  p.writeUInt16BE(0x4000, 6);
  p[8] = spec.ttl ?? 64;
  p[9] = IP_PROTO_UDP;
  writeIpv4(p, 12, spec.src);
  writeIpv4(p, 16, spec.dst);
  p.writeUInt16BE(checksumFinish(checksumAdd(p, 0, IPV4_MIN_HEADER_LEN)), 10);
  const u = IPV4_MIN_HEADER_LEN;
  p.writeUInt16BE(spec.srcPort & 0xffff, u);
  p.writeUInt16BE(spec.dstPort & 0xffff, u + 2);
  p.writeUInt16BE(udpLen, u + 4);
  p.set(spec.payload, u + UDP_HEADER_LEN);
  if (spec.udpChecksum ?? true) {
    let s = checksumAdd(p, 12, 8); // pseudo-header: src and dst
    s = checksumAddWord(IP_PROTO_UDP, s);
    s = checksumAddWord(udpLen, s);
    s = checksumAdd(p, u, udpLen, s);
    const c = checksumFinish(s);
    p.writeUInt16BE(c === 0 ? 0xffff : c, u + 6); // 0 means "no checksum", so RFC 768 sends all ones
  }
  return p;
}
