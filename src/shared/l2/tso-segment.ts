// SPDX-License-Identifier: UNLICENSED
// TCP super-frames (a TAP opened with IFF_VNET_HDR and TSO hands them over with a virtio_net_hdr): the
// header validated against the frame's own headers, segmentation into ordinary frames, and checksum
// completion (docs/tunnel-protocol.md, "OFFLOAD validation"; research DESIGN.md §3.1). Pure, allocation
// per segment only; the reference and fallback for a C helper, shared by the headend (toward VTEPs) and
// the datagram channel (into datagrams). Every check is bounded; a bad header is a named drop reason.

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_ECN = 0x80;
/** At most this many segments per super-frame (64 KB of 512-byte segments). */
export const MAX_SEGMENTS = 128;
const MAX_GSO_SIZE = 9_000;

export const OFFLOAD_DROPS = [
  'offload-header',
  'offload-gso-type',
  'offload-ip',
  'offload-ipv6-ext',
  'offload-tcp',
  'offload-csum',
  'offload-segments',
] as const;
export type OffloadDrop = (typeof OFFLOAD_DROPS)[number];

export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function readVnetHdr(h: Uint8Array): VnetHdr {
  const u16 = (o: number): number => (h[o] ?? 0) | ((h[o + 1] ?? 0) << 8);
  return { flags: h[0] ?? 0, gsoType: h[1] ?? 0, hdrLen: u16(2), gsoSize: u16(4), csumStart: u16(6), csumOffset: u16(8) };
}

export function writeVnetHdr(dst: Uint8Array, off: number, v: VnetHdr): void {
  const u16 = (o: number, x: number): void => {
    dst[off + o] = x & 0xff;
    dst[off + o + 1] = (x >>> 8) & 0xff;
  };
  dst[off] = v.flags;
  dst[off + 1] = v.gsoType;
  u16(2, v.hdrLen);
  u16(4, v.gsoSize);
  u16(6, v.csumStart);
  u16(8, v.csumOffset);
}

/** What a valid OFFLOAD record holds, as the receiver parsed it itself (hdr_len is never trusted). */
export interface Offload {
  readonly hdr: VnetHdr;
  /** GSO: a TCP super-frame to cut; plain: one frame, maybe with a partial checksum to complete. */
  readonly gso: boolean;
  readonly ipv6: boolean;
  /** Offsets of the IP and TCP headers, the end of all headers, and the end of the IP packet. */
  readonly l3: number;
  readonly l4: number;
  readonly headers: number;
  readonly ipEnd: number;
  /** TCP payload bytes per segment (gso_size) and the segment count. */
  readonly mss: number;
  readonly segments: number;
}

const be16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

/** Validates an OFFLOAD record's header against its frame: the parsed Offload, or the drop reason. */
export function parseOffload(vnetHdr: Uint8Array, frame: Uint8Array): Offload | OffloadDrop {
  if (vnetHdr.length !== VNET_HDR_LEN) return 'offload-header';
  const hdr = readVnetHdr(vnetHdr);
  if ((hdr.flags & ~(VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0) return 'offload-header';
  const kind = hdr.gsoType & ~GSO_ECN;
  if (kind !== GSO_NONE && kind !== GSO_TCPV4 && kind !== GSO_TCPV6) return 'offload-gso-type';
  if (kind === GSO_NONE && hdr.gsoType !== GSO_NONE) return 'offload-gso-type';
  const needsCsum = (hdr.flags & VNET_F_NEEDS_CSUM) !== 0;
  if (kind === GSO_NONE) {
    // One frame: at most a partial L4 checksum to complete, TCP (16) or UDP (6), inside the frame.
    if (
      needsCsum &&
      ((hdr.csumOffset !== 16 && hdr.csumOffset !== 6) || hdr.csumStart < 14 || hdr.csumStart + hdr.csumOffset + 2 > frame.length)
    )
      return 'offload-csum';
    return { hdr, gso: false, ipv6: false, l3: 0, l4: hdr.csumStart, headers: 0, ipEnd: frame.length, mss: 0, segments: 1 };
  }
  if (hdr.gsoSize < 1 || hdr.gsoSize > MAX_GSO_SIZE) return 'offload-header';
  // Ethernet with up to two VLAN tags.
  let l3 = 14;
  let etherType = be16(frame, 12);
  for (let tags = 0; (etherType === 0x8100 || etherType === 0x88a8) && tags < 2; tags++) {
    etherType = be16(frame, l3 + 2);
    l3 += 4;
  }
  let l4: number;
  let ipEnd: number;
  const ipv6 = kind === GSO_TCPV6;
  if (!ipv6) {
    if (etherType !== 0x0800 || frame.length < l3 + 20) return 'offload-ip';
    const vihl = frame[l3] ?? 0;
    const ihl = (vihl & 0x0f) * 4;
    if (vihl >> 4 !== 4 || ihl < 20 || frame[l3 + 9] !== 6) return 'offload-ip';
    if ((be16(frame, l3 + 6) & 0x3fff) !== 0) return 'offload-ip'; // MF or a fragment offset
    l4 = l3 + ihl;
    ipEnd = l3 + be16(frame, l3 + 2);
  } else {
    if (etherType !== 0x86dd || frame.length < l3 + 40 || (frame[l3] ?? 0) >> 4 !== 6) return 'offload-ip';
    if (frame[l3 + 6] !== 6) return 'offload-ipv6-ext';
    l4 = l3 + 40;
    ipEnd = l4 + be16(frame, l3 + 4);
  }
  if (ipEnd > frame.length || ipEnd < l4 + 20) return 'offload-ip';
  const doff = ((frame[l4 + 12] ?? 0) >> 4) * 4;
  if (doff < 20 || l4 + doff > ipEnd) return 'offload-tcp';
  if (needsCsum && (hdr.csumStart !== l4 || hdr.csumOffset !== 16)) return 'offload-csum';
  const headers = l4 + doff;
  const payload = ipEnd - headers;
  const segments = Math.max(1, Math.ceil(payload / hdr.gsoSize));
  if (segments > MAX_SEGMENTS) return 'offload-segments';
  return { hdr, gso: true, ipv6, l3, l4, headers, ipEnd, mss: hdr.gsoSize, segments };
}

/** The ones'-complement sum of b[from, to) added to `sum` (not folded). */
export function sum16(b: Uint8Array, from: number, to: number, sum: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) sum += ((b[i] as number) << 8) | (b[i + 1] as number);
  if (i < to) sum += (b[i] as number) << 8;
  return sum;
}

/** `sum` folded to 16 bits (ones'-complement carries added back). */
export const fold = (sum: number): number => {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
};

/** bytes[from, to) summed as big-endian 16-bit words plus `initial`, folded, not complemented. */
export type InetSum = (bytes: Uint8Array, from: number, to: number, initial: number) => number;

/** The TypeScript InetSum; the TAP addon has one in C. */
export const inetSum: InetSum = (bytes, from, to, initial) => fold(sum16(bytes, from, to, initial));

/** Completes a partial checksum in place: the field holds the pseudo-header sum (virtio NEEDS_CSUM). */
export function completeChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): void {
  let c = ~fold(sum16(frame, csumStart, frame.length, 0)) & 0xffff;
  if (c === 0 && csumOffset === 6) c = 0xffff; // UDP: 0 means "no checksum"
  frame[csumStart + csumOffset] = c >>> 8;
  frame[csumStart + csumOffset + 1] = c & 0xff;
}

/** The full TCP checksum of seg[l4, end) with the IPv4/IPv6 pseudo-header, written into the segment. */
function tcpChecksum(seg: Uint8Array, l3: number, l4: number, end: number, ipv6: boolean): void {
  seg[l4 + 16] = 0;
  seg[l4 + 17] = 0;
  const len = end - l4;
  let s = ipv6 ? sum16(seg, l3 + 8, l3 + 40, 0) : sum16(seg, l3 + 12, l3 + 20, 0);
  s += 6 + (len & 0xffff) + Math.floor(len / 0x10000);
  s = sum16(seg, l4, end, s);
  const c = ~fold(s) & 0xffff;
  seg[l4 + 16] = c >>> 8;
  seg[l4 + 17] = c & 0xff;
}

/** The IPv4 header checksum of seg[l3, l3 + ihl), written into the header. */
export function ipv4Checksum(seg: Uint8Array, l3: number, ihl: number): void {
  seg[l3 + 10] = 0;
  seg[l3 + 11] = 0;
  const c = ~fold(sum16(seg, l3, l3 + ihl, 0)) & 0xffff;
  seg[l3 + 10] = c >>> 8;
  seg[l3 + 11] = c & 0xff;
}

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Cuts a validated GSO super-frame into ordinary frames of at most `mss` payload bytes (gso_size, or
 * smaller to fit a path: a TCP receiver takes any segment up to the MSS it advertised). Per segment: IPv4
 * total length, id + i and header checksum; IPv6 payload length; TCP seq + i*mss, FIN/PSH on the last
 * only, CWR on the first only, and the full checksum. Appends the frames to `out`; returns how many.
 */
export function segmentOffload(o: Offload, frame: Uint8Array, out: Buffer[], mss = o.mss, limit = Infinity): number {
  if (!o.gso) throw new RangeError('segmentOffload takes a GSO super-frame');
  if (!(mss >= 1)) throw new RangeError(`mss must be >= 1, got ${mss}`);
  const { l3, l4, headers, ipEnd, ipv6 } = o;
  const payload = ipEnd - headers;
  const all = Math.max(1, Math.ceil(payload / mss));
  const n = Math.min(all, limit);
  const seq0 = (((frame[l4 + 4] ?? 0) << 24) | ((frame[l4 + 5] ?? 0) << 16) | ((frame[l4 + 6] ?? 0) << 8) | (frame[l4 + 7] ?? 0)) >>> 0;
  const flags = frame[l4 + 13] ?? 0;
  const id0 = ipv6 ? 0 : be16(frame, l3 + 4);
  const ihl = ipv6 ? 40 : ((frame[l3] ?? 0) & 0x0f) * 4;
  for (let i = 0; i < n; i++) {
    const from = headers + i * mss;
    const take = Math.min(mss, ipEnd - from);
    const seg = Buffer.allocUnsafe(headers + take);
    seg.set(frame.subarray(0, headers), 0);
    seg.set(frame.subarray(from, from + take), headers);
    const ipLen = headers + take - l3;
    if (ipv6) {
      seg[l3 + 4] = ((ipLen - 40) >>> 8) & 0xff;
      seg[l3 + 5] = (ipLen - 40) & 0xff;
    } else {
      seg[l3 + 2] = (ipLen >>> 8) & 0xff;
      seg[l3 + 3] = ipLen & 0xff;
      const id = (id0 + i) & 0xffff;
      seg[l3 + 4] = id >>> 8;
      seg[l3 + 5] = id & 0xff;
      ipv4Checksum(seg, l3, ihl);
    }
    const seq = (seq0 + i * mss) >>> 0;
    seg[l4 + 4] = seq >>> 24;
    seg[l4 + 5] = (seq >>> 16) & 0xff;
    seg[l4 + 6] = (seq >>> 8) & 0xff;
    seg[l4 + 7] = seq & 0xff;
    let f = flags;
    if (i < all - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= ~TCP_CWR;
    seg[l4 + 13] = f;
    tcpChecksum(seg, l3, l4, seg.length, ipv6);
    out.push(seg);
  }
  return n;
}

/**
 * An OFFLOAD record as ordinary frames, whatever it holds: a super-frame cut into segments, or a single
 * frame with its partial checksum completed (a copy: the record's bytes are never written). Appends to
 * `out`; returns the frames added.
 */
export function toFrames(o: Offload, frame: Uint8Array, out: Buffer[], mss = o.mss): number {
  if (o.gso) return segmentOffload(o, frame, out, mss);
  const copy = Buffer.from(frame);
  if ((o.hdr.flags & VNET_F_NEEDS_CSUM) !== 0) completeChecksum(copy, o.hdr.csumStart, o.hdr.csumOffset);
  out.push(copy);
  return 1;
}

/**
 * What the Layer-2 policy looks at for a whole OFFLOAD record: its first frame (the first segment of a
 * super-frame, or the frame itself), so the decision is taken once per super-frame on an ordinary frame.
 */
export function headFrame(o: Offload, frame: Buffer): Buffer {
  if (!o.gso) return frame;
  const out: Buffer[] = [];
  segmentOffload(o, frame, out, o.mss, 1);
  return out[0] as Buffer;
}

/**
 * The first segment's bytes as far as its Ethernet header and its length tell, without building it: a
 * view of the super-frame cut at the first segment's size. For a decision that reads only the Ethernet
 * header and the frame's length (the headend's switch); the IP and TCP headers in it are the super-frame's.
 */
export function headView(o: Offload, frame: Buffer): Buffer {
  if (!o.gso) return frame;
  return frame.subarray(0, Math.min(o.ipEnd, o.headers + o.mss));
}
