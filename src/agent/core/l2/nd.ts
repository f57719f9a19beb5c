// SPDX-License-Identifier: UNLICENSED
// IPv6 neighbour discovery (RFC 4861): neighbour solicitation (135) and advertisement (136) carried
// directly in IPv6 (no extension headers, as every stack sends them). The validity checks are those of
// RFC 4861 7.1.1/7.1.2 that the Linux kernel also applies, so we never proxy or learn from a message the
// hosts themselves would discard.
import { ConfigError } from '../../../shared/errors.js';
import { checksumAdd, checksumAddWord, checksumFinish } from './checksum.js';
import { encodeEthernet, ETHERTYPE_IPV6, type VlanTag } from '../../../shared/l2/ethernet.js';
import { IP_PROTO_ICMPV6 } from './ipv4.js';
import { macKey, macKeyAt, writeMacKey, type MacInput } from '../../../shared/l2/mac.js';

export const IPV6_HEADER_LEN = 40;
export const IPV6_ADDR_LEN = 16;
export const ICMPV6_NS = 135;
export const ICMPV6_NA = 136;
/** NS/NA body without options: type, code, checksum, 4 bytes reserved/flags, 16-byte target. */
export const ND_MIN_LEN = 24;
/** RFC 4861: ND messages are link-local only; a router would have decremented this. */
export const ND_HOP_LIMIT = 255;
export const ND_OPT_SLLA = 1;
export const ND_OPT_TLLA = 2;
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

export const ND_DROPS = ['nd-short', 'nd-bad-checksum', 'nd-bad-hop-limit', 'nd-malformed'] as const;
export type NdDrop = (typeof ND_DROPS)[number];

export const ND_KINDS = ['ns', 'dad-ns', 'na-solicited', 'na-unsolicited'] as const;
/** dad-ns: NS from the unspecified address :: (RFC 4862 duplicate address detection). */
export type NdKind = (typeof ND_KINDS)[number];

/** Filled in place by parseNd. The address fields are views into the frame, valid while it is. */
export interface NdView {
  type: 135 | 136;
  srcIp: Buffer;
  dstIp: Buffer;
  targetIp: Buffer;
  /** Source link-layer address option in an NS, target link-layer address option in an NA; -1 if absent. */
  linkAddr: number;
  router: boolean;
  solicited: boolean;
  override: boolean;
  kind: NdKind;
}

export function newNdView(): NdView {
  return {
    type: ICMPV6_NS,
    srcIp: Buffer.alloc(IPV6_ADDR_LEN),
    dstIp: Buffer.alloc(IPV6_ADDR_LEN),
    targetIp: Buffer.alloc(IPV6_ADDR_LEN),
    linkAddr: -1,
    router: false,
    solicited: false,
    override: false,
    kind: 'ns',
  };
}

const u16At = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

function isUnspecifiedAt(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (b[o + i] !== 0) return false;
  return true;
}

/** ff02::1:ffXX:XXXX (RFC 4291 2.7.1). */
function isSolicitedNodeAt(b: Uint8Array, o: number): boolean {
  if (b[o] !== 0xff || b[o + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (b[o + i] !== 0) return false;
  return b[o + 11] === 0x01 && b[o + 12] === 0xff;
}

function viewAt(frame: Uint8Array, off: number): Buffer {
  return Buffer.from(frame.buffer, frame.byteOffset + off, IPV6_ADDR_LEN);
}

/** ICMPv6 checksum over the RFC 4443 2.3 pseudo-header and `len` bytes of message at `icmp`. */
function icmpv6Sum(frame: Uint8Array, l3: number, icmp: number, len: number): number {
  let s = checksumAdd(frame, l3 + 8, 2 * IPV6_ADDR_LEN);
  s = checksumAddWord(len >>> 16, s);
  s = checksumAddWord(len & 0xffff, s);
  s = checksumAddWord(IP_PROTO_ICMPV6, s);
  return checksumAdd(frame, icmp, len, s);
}

/**
 * Parses an IPv6 packet at `l3Offset` (EtherType 0x86dd seen by the caller). Returns 'not-nd' for any
 * IPv6 packet that is not an NS or NA (including ones too short to tell), null when `view` is filled,
 * or the reason to drop a broken NS/NA.
 */
export function parseNd(frame: Uint8Array, l3Offset: number, view: NdView): NdDrop | null | 'not-nd' {
  const l3 = l3Offset;
  if (l3 < 0 || frame.length - l3 < IPV6_HEADER_LEN + 1) return 'not-nd';
  if ((frame[l3] ?? 0) >> 4 !== 6 || frame[l3 + 6] !== IP_PROTO_ICMPV6) return 'not-nd';
  const icmp = l3 + IPV6_HEADER_LEN;
  const type = frame[icmp] ?? 0;
  if (type !== ICMPV6_NS && type !== ICMPV6_NA) return 'not-nd';
  const len = u16At(frame, l3 + 4);
  if (len < ND_MIN_LEN || icmp + len > frame.length) return 'nd-short';
  if (frame[l3 + 7] !== ND_HOP_LIMIT) return 'nd-bad-hop-limit';
  if (checksumFinish(icmpv6Sum(frame, l3, icmp, len)) !== 0) return 'nd-bad-checksum';
  if (frame[icmp + 1] !== 0) return 'nd-malformed';
  const target = icmp + 8;
  if (frame[target] === 0xff) return 'nd-malformed'; // target must not be multicast
  const srcUnspecified = isUnspecifiedAt(frame, l3 + 8);
  const dstMulticast = frame[l3 + 24] === 0xff;
  const flags = frame[icmp + 4] ?? 0;
  const wantedOpt = type === ICMPV6_NS ? ND_OPT_SLLA : ND_OPT_TLLA;
  let linkAddr = -1;
  for (let o = icmp + ND_MIN_LEN; o < icmp + len;) {
    if (icmp + len - o < 2) return 'nd-malformed';
    const optType = frame[o] ?? 0;
    const optLen = (frame[o + 1] ?? 0) * 8;
    if (optLen === 0 || o + optLen > icmp + len) return 'nd-malformed';
    if (optType === wantedOpt && optLen === 8) linkAddr = macKeyAt(frame, o + 2);
    o += optLen;
  }
  let kind: NdKind;
  if (type === ICMPV6_NS) {
    if (srcUnspecified) {
      // DAD: sent to the target's solicited-node group and never with a source link-layer address.
      if (!isSolicitedNodeAt(frame, l3 + 24) || linkAddr !== -1) return 'nd-malformed';
      kind = 'dad-ns';
    } else {
      kind = 'ns';
    }
  } else {
    const solicited = (flags & NA_FLAG_SOLICITED) !== 0;
    if (solicited && dstMulticast) return 'nd-malformed';
    kind = solicited ? 'na-solicited' : 'na-unsolicited';
  }
  view.type = type;
  view.srcIp = viewAt(frame, l3 + 8);
  view.dstIp = viewAt(frame, l3 + 24);
  view.targetIp = viewAt(frame, target);
  view.linkAddr = linkAddr;
  view.router = type === ICMPV6_NA && (flags & NA_FLAG_ROUTER) !== 0;
  view.solicited = type === ICMPV6_NA && (flags & NA_FLAG_SOLICITED) !== 0;
  view.override = type === ICMPV6_NA && (flags & NA_FLAG_OVERRIDE) !== 0;
  view.kind = kind;
  return null;
}

/** RFC 5952 text form: lower case, longest run of two or more zero groups as `::`. */
export function ipv6ToString(ip: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16At(ip, off + 2 * i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Parses IPv6 text (with `::`, optionally a trailing dotted quad) for configuration and tests. */
export function parseIpv6(text: string, key = 'ipv6'): Buffer {
  const bad = (): ConfigError => new ConfigError(key, `"${text}" is not an IPv6 address; write it like fd00::10`);
  let t = text.trim();
  const tail: number[] = [];
  const v4 = /(?:^|:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
  if (v4) {
    const bytes = v4.slice(1, 5).map(Number);
    if (bytes.some((b) => b > 255)) throw bad();
    tail.push(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0), ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0));
    t = t.slice(0, t.length - v4[0].length + (v4[0].startsWith(':') ? 1 : 0));
    if (t.endsWith(':') && !t.endsWith('::')) t = t.slice(0, -1);
  }
  const halves = t.split('::');
  if (halves.length > 2) throw bad();
  const groups = (s: string | undefined): number[] => {
    if (!s) return [];
    return s.split(':').map((h) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) throw bad();
      return Number.parseInt(h, 16);
    });
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const explicit = head.length + rest.length + tail.length;
  let all: number[];
  if (halves.length === 2) {
    if (explicit > 7) throw bad();
    all = [...head, ...new Array<number>(8 - explicit).fill(0), ...rest, ...tail];
  } else {
    all = [...head, ...tail];
  }
  if (all.length !== 8) throw bad();
  const out = Buffer.alloc(IPV6_ADDR_LEN);
  all.forEach((w, i) => out.writeUInt16BE(w, 2 * i));
  return out;
}

/** ff02::1:ffXX:XXXX for the low 24 bits of `ip`: where NS for `ip` are sent. */
export function solicitedNodeMulticast(ip: Uint8Array): Buffer {
  const out = Buffer.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0]);
  out[13] = ip[13] ?? 0;
  out[14] = ip[14] ?? 0;
  out[15] = ip[15] ?? 0;
  return out;
}

/** 33:33 + low 32 bits of an IPv6 multicast address (RFC 2464 7), as a MAC key. */
export function ipv6MulticastMacKey(ip: Uint8Array): number {
  const b = Buffer.from([0x33, 0x33, ip[12] ?? 0, ip[13] ?? 0, ip[14] ?? 0, ip[15] ?? 0]);
  return macKeyAt(b, 0);
}

export const IPV6_ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');
export const IPV6_UNSPECIFIED = Buffer.alloc(IPV6_ADDR_LEN);

interface NdCommon {
  srcMac: MacInput;
  srcIp: Uint8Array;
  targetIp: Uint8Array;
  /** Default: ethSrc = srcMac. */
  ethSrc?: MacInput;
  vlans?: readonly VlanTag[];
  /** Only for tests of the hop-limit check; default 255. */
  hopLimit?: number;
}

export interface NsSpec extends NdCommon {
  /** Default: the target's solicited-node multicast group. */
  dstIp?: Uint8Array;
  /** Default: the 33:33 mapping of dstIp; required when dstIp is unicast. */
  ethDst?: MacInput;
  /** Source link-layer address option; default srcMac, and never for a DAD NS (srcIp ::). */
  slla?: MacInput | null;
}

export interface NaSpec extends NdCommon {
  /** Default ff02::1 (all nodes), the destination of an unsolicited NA. */
  dstIp?: Uint8Array;
  ethDst?: MacInput;
  router: boolean;
  solicited: boolean;
  override: boolean;
  /** Target link-layer address option; default srcMac; null to omit. */
  tlla?: MacInput | null;
}

function encodeNd(
  type: 135 | 136,
  flags: number,
  common: NdCommon,
  dstIp: Uint8Array,
  ethDst: MacInput | undefined,
  linkAddr: MacInput | null,
): Buffer {
  if (common.srcIp.length < IPV6_ADDR_LEN || dstIp.length < IPV6_ADDR_LEN || common.targetIp.length < IPV6_ADDR_LEN) {
    throw new RangeError('IPv6 addresses must be 16 bytes');
  }
  let dstMac = ethDst;
  if (dstMac === undefined) {
    if (dstIp[0] !== 0xff) throw new RangeError('ethDst is required when the IPv6 destination is unicast');
    dstMac = ipv6MulticastMacKey(dstIp);
  }
  const icmpLen = ND_MIN_LEN + (linkAddr === null ? 0 : 8);
  const p = Buffer.alloc(IPV6_HEADER_LEN + icmpLen);
  p[0] = 0x60;
  p.writeUInt16BE(icmpLen, 4);
  p[6] = IP_PROTO_ICMPV6;
  p[7] = common.hopLimit ?? ND_HOP_LIMIT;
  p.set(common.srcIp.subarray(0, IPV6_ADDR_LEN), 8);
  p.set(dstIp.subarray(0, IPV6_ADDR_LEN), 24);
  const icmp = IPV6_HEADER_LEN;
  p[icmp] = type;
  p[icmp + 4] = flags;
  p.set(common.targetIp.subarray(0, IPV6_ADDR_LEN), icmp + 8);
  if (linkAddr !== null) {
    p[icmp + ND_MIN_LEN] = type === ICMPV6_NS ? ND_OPT_SLLA : ND_OPT_TLLA;
    p[icmp + ND_MIN_LEN + 1] = 1;
    writeMacKey(p, icmp + ND_MIN_LEN + 2, macKey(linkAddr));
  }
  p.writeUInt16BE(checksumFinish(icmpv6Sum(p, 0, icmp, icmpLen)), icmp + 2);
  const src = common.ethSrc ?? common.srcMac;
  return encodeEthernet(
    common.vlans
      ? { dst: dstMac, src, etherType: ETHERTYPE_IPV6, payload: p, vlans: common.vlans }
      : { dst: dstMac, src, etherType: ETHERTYPE_IPV6, payload: p },
  );
}

/** Builds a whole Ethernet frame with a neighbour solicitation. srcIp :: makes it a DAD probe. */
export function encodeNs(spec: NsSpec): Buffer {
  const dad = isUnspecifiedAt(spec.srcIp, 0);
  const slla = dad ? null : spec.slla === undefined ? spec.srcMac : spec.slla;
  return encodeNd(ICMPV6_NS, 0, spec, spec.dstIp ?? solicitedNodeMulticast(spec.targetIp), spec.ethDst, slla);
}

/** Builds a whole Ethernet frame with a neighbour advertisement. */
export function encodeNa(spec: NaSpec): Buffer {
  const flags = (spec.router ? NA_FLAG_ROUTER : 0) | (spec.solicited ? NA_FLAG_SOLICITED : 0) | (spec.override ? NA_FLAG_OVERRIDE : 0);
  const tlla = spec.tlla === undefined ? spec.srcMac : spec.tlla;
  return encodeNd(ICMPV6_NA, flags, spec, spec.dstIp ?? IPV6_ALL_NODES, spec.ethDst, tlla);
}
