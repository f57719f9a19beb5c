// SPDX-License-Identifier: UNLICENSED
// ARP for Ethernet/IPv4 (RFC 826) with the RFC 5227 classification the policy depends on: probes and
// gratuitous ARPs must never be suppressed or answered by a proxy, so they are told apart here.
import { encodeEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, type VlanTag } from '../../../shared/l2/ethernet.js';
import { macKeyAt, writeMacKey, macKey, BROADCAST_MAC_KEY, type MacInput } from '../../../shared/l2/mac.js';
import { writeIpv4 } from './ipv4.js';

export const ARP_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export const ARP_DROPS = ['arp-short', 'arp-unsupported'] as const;
export type ArpDrop = (typeof ARP_DROPS)[number];

export const ARP_KINDS = ['request', 'reply', 'gratuitous', 'probe'] as const;
/**
 * - probe: a request with sender IP 0.0.0.0 (RFC 5227 2.1.1, address conflict detection);
 * - gratuitous: sender IP == target IP, request or reply form (the RFC 5227 "announcement" is the
 *   request form);
 * - otherwise request or reply by opcode.
 */
export type ArpKind = (typeof ARP_KINDS)[number];

/** Filled in place by parseArp. IPs are u32 numbers, MACs 48-bit keys. */
export interface ArpView {
  op: number;
  senderMac: number;
  senderIp: number;
  targetMac: number;
  targetIp: number;
  kind: ArpKind;
}

export function newArpView(): ArpView {
  return { op: 0, senderMac: 0, senderIp: 0, targetMac: 0, targetIp: 0, kind: 'request' };
}

const u32At = (b: Uint8Array, o: number): number =>
  (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0;
const u16At = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

export function classifyArp(op: number, senderIp: number, targetIp: number): ArpKind {
  if (op === ARP_OP_REQUEST && senderIp === 0) return 'probe';
  // A reply "from" 0.0.0.0 announces nothing, so it stays a plain reply.
  if (senderIp === targetIp && senderIp !== 0) return 'gratuitous';
  return op === ARP_OP_REQUEST ? 'request' : 'reply';
}

/**
 * Parses the ARP packet at `l3Offset` (the caller has seen EtherType 0x0806). Anything but Ethernet/IPv4
 * request or reply (other hardware types, RARP, InARP) is 'arp-unsupported': forwarded as opaque by the
 * policy, never proxied.
 */
export function parseArp(frame: Uint8Array, l3Offset: number, view: ArpView): ArpDrop | null {
  if (l3Offset < 0 || frame.length - l3Offset < ARP_LEN) return 'arp-short';
  const o = l3Offset;
  if (u16At(frame, o) !== ARP_HTYPE_ETHERNET || u16At(frame, o + 2) !== ETHERTYPE_IPV4) return 'arp-unsupported';
  if (frame[o + 4] !== 6 || frame[o + 5] !== 4) return 'arp-unsupported';
  const op = u16At(frame, o + 6);
  if (op !== ARP_OP_REQUEST && op !== ARP_OP_REPLY) return 'arp-unsupported';
  view.op = op;
  view.senderMac = macKeyAt(frame, o + 8);
  view.senderIp = u32At(frame, o + 14);
  view.targetMac = macKeyAt(frame, o + 18);
  view.targetIp = u32At(frame, o + 24);
  view.kind = classifyArp(op, view.senderIp, view.targetIp);
  return null;
}

export interface ArpSpec {
  op: number;
  senderMac: MacInput;
  senderIp: number;
  /** 0 (00:00:00:00:00:00) in requests. */
  targetMac: MacInput;
  targetIp: number;
  /** Default: broadcast for a request, targetMac for a reply. */
  ethDst?: MacInput;
  /** Default: senderMac. */
  ethSrc?: MacInput;
  /** Tags to put on the frame (outer first), e.g. those of the request being answered. */
  vlans?: readonly VlanTag[];
}

/** Builds a whole Ethernet frame carrying the ARP packet, padded to 60 bytes. */
export function encodeArp(spec: ArpSpec): Buffer {
  const arp = Buffer.alloc(ARP_LEN);
  arp.writeUInt16BE(ARP_HTYPE_ETHERNET, 0);
  arp.writeUInt16BE(ETHERTYPE_IPV4, 2);
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(spec.op & 0xffff, 6);
  writeMacKey(arp, 8, macKey(spec.senderMac));
  writeIpv4(arp, 14, spec.senderIp);
  writeMacKey(arp, 18, macKey(spec.targetMac));
  writeIpv4(arp, 24, spec.targetIp);
  const dst = spec.ethDst ?? (spec.op === ARP_OP_REQUEST ? BROADCAST_MAC_KEY : spec.targetMac);
  const src = spec.ethSrc ?? spec.senderMac;
  return encodeEthernet(
    spec.vlans
      ? { dst, src, etherType: ETHERTYPE_ARP, payload: arp, vlans: spec.vlans }
      : { dst, src, etherType: ETHERTYPE_ARP, payload: arp },
  );
}

/**
 * A gratuitous ARP announcing `ip` at `mac`, broadcast. The request form (default) is what RFC 5227 calls
 * an announcement; hosts update caches from either form.
 */
export function encodeGratuitousArp(mac: MacInput, ip: number, op: number = ARP_OP_REQUEST): Buffer {
  return encodeArp({
    op,
    senderMac: mac,
    senderIp: ip,
    targetMac: op === ARP_OP_REPLY ? mac : 0,
    targetIp: ip,
    ethDst: BROADCAST_MAC_KEY,
  });
}
