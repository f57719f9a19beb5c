// SPDX-License-Identifier: UNLICENSED
// Ethernet II / 802.3 header with up to two VLAN tags (802.1Q C-tag 0x8100, 802.1ad S-tag 0x88a8). Frames
// here never carry the FCS: the tap device and the tunnel both hand us frames without it.
import { macKeyAt, writeMacKey, macKey, type MacInput } from './mac.js';

export const ETH_HEADER_LEN = 14;
/** 802.3 minimum frame (64 bytes) minus the 4-byte FCS; senders pad short frames up to this. */
export const ETH_MIN_FRAME = 60;
/** 1500-byte payload + 14-byte header, without FCS; each VLAN tag adds 4. */
export const ETH_MAX_UNTAGGED = 1514;
export const ETH_VLAN_TAG_LEN = 4;
export const ETH_MAX_TAGS = 2;
export const ETH_MAX_FRAME = ETH_MAX_UNTAGGED + ETH_MAX_TAGS * ETH_VLAN_TAG_LEN; // 1522

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
/** Values below this are an 802.3 length field, not an EtherType (IEEE 802.3 clause 3.2.6). */
export const ETHERTYPE_MIN = 0x0600;
/** Largest valid 802.3 length field. */
export const ETH_MAX_PAYLOAD = 1500;

export const ETHERNET_DROPS = ['eth-short', 'eth-oversize', 'eth-too-many-tags', 'eth-bad-length'] as const;
export type EthernetDrop = (typeof ETHERNET_DROPS)[number];

/** Filled in place by parseEthernet: one per caller, reused for every frame. */
export interface EthernetView {
  dst: number;
  src: number;
  /** EtherType after the tags; below 0x0600 it is the 802.3 length of an LLC frame. */
  etherType: number;
  vlanCount: number;
  /** TCI of the outer tag, 0 when untagged. */
  vlanTci: number;
  /** Offset of the first byte after the tags and EtherType. */
  l3Offset: number;
}

export function newEthernetView(): EthernetView {
  return { dst: 0, src: 0, etherType: 0, vlanCount: 0, vlanTci: 0, l3Offset: 0 };
}

const isTagType = (t: number): boolean => t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ;

/** Parses the header into `view`. Returns null when the frame is usable, or the reason to drop it. */
export function parseEthernet(frame: Uint8Array, view: EthernetView): EthernetDrop | null {
  const len = frame.length;
  if (len < ETH_HEADER_LEN) return 'eth-short';
  if (len > ETH_MAX_FRAME) return 'eth-oversize';
  view.dst = macKeyAt(frame, 0);
  view.src = macKeyAt(frame, 6);
  let off = 12;
  let type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
  let tags = 0;
  let outerTci = 0;
  while (isTagType(type)) {
    if (tags === ETH_MAX_TAGS) return 'eth-too-many-tags';
    if (len < off + 2 + ETH_VLAN_TAG_LEN) return 'eth-short';
    const tci = ((frame[off + 2] ?? 0) << 8) | (frame[off + 3] ?? 0);
    if (tags === 0) outerTci = tci;
    tags++;
    off += ETH_VLAN_TAG_LEN;
    type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
  }
  if (len > ETH_MAX_UNTAGGED + tags * ETH_VLAN_TAG_LEN) return 'eth-oversize';
  const l3 = off + 2;
  // 802.3 length: may be less than what follows (padding to 60 bytes), never more, never above 1500.
  if (type < ETHERTYPE_MIN && (type > ETH_MAX_PAYLOAD || type > len - l3)) return 'eth-bad-length';
  view.etherType = type;
  view.vlanCount = tags;
  view.vlanTci = outerTci;
  view.l3Offset = l3;
  return null;
}

export interface VlanTag {
  /** 0x8100 (802.1Q, default) or 0x88a8 (802.1ad). */
  tpid?: number;
  /** PCP (3 bits) | DEI (1) | VID (12). */
  tci: number;
}

export interface EthernetFrameSpec {
  dst: MacInput;
  src: MacInput;
  etherType: number;
  payload: Uint8Array;
  /** Outer tag first. */
  vlans?: readonly VlanTag[];
}

/**
 * Builds a frame, zero-padded to the 60-byte minimum like a NIC would. Throws RangeError for frames we
 * must never build (too many tags, payload too large): encoders run on rare paths with our own input.
 */
export function encodeEthernet(spec: EthernetFrameSpec): Buffer {
  const vlans = spec.vlans ?? [];
  if (vlans.length > ETH_MAX_TAGS) throw new RangeError(`at most ${ETH_MAX_TAGS} VLAN tags, got ${vlans.length}`);
  if (spec.payload.length > ETH_MAX_PAYLOAD) {
    throw new RangeError(`Ethernet payload of ${spec.payload.length} bytes exceeds ${ETH_MAX_PAYLOAD}`);
  }
  const hdr = ETH_HEADER_LEN + vlans.length * ETH_VLAN_TAG_LEN;
  const frame = Buffer.alloc(Math.max(ETH_MIN_FRAME, hdr + spec.payload.length));
  writeMacKey(frame, 0, macKey(spec.dst));
  writeMacKey(frame, 6, macKey(spec.src));
  let off = 12;
  for (const v of vlans) {
    frame.writeUInt16BE(v.tpid ?? ETHERTYPE_VLAN, off);
    frame.writeUInt16BE(v.tci & 0xffff, off + 2);
    off += ETH_VLAN_TAG_LEN;
  }
  frame.writeUInt16BE(spec.etherType & 0xffff, off);
  frame.set(spec.payload, off + 2);
  return frame;
}
