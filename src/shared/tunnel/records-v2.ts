// SPDX-License-Identifier: UNLICENSED
// Tunnel protocol v2 stream framing (docs: research DESIGN.md §3): `u8 type | u24 length (big endian) | body`.
// u24 because a TSO super-frame (IP length 65 535 + Ethernet + VLAN + the 10-byte virtio_net_hdr) does not
// fit v1's u16; a type byte so control no longer hides in VNI-0 Ethernet frames. Not yet wired into the
// session: this is the codec and the capability negotiation only (issue 18, item 2 in progress).
import { ETH_HEADER_LEN, ETH_MAX_FRAME } from '../l2/ethernet.js';
import { VXLAN_FLAG_I, VXLAN_HEADER_LEN, writeVxlanHeader } from '../l2/vxlan.js';

export const ALPN_V1 = 'connector-l2/1';
export const ALPN_V2 = 'connector-l2/2';

export const REC_FRAME = 0x01;
export const REC_OFFLOAD = 0x02;
export const REC_CONTROL = 0x03;
export const V2_HEADER_LEN = 4;
export const VNET_HDR_LEN = 10;
/** Above this no record is ever valid and the stream cannot be resynchronised. */
export const V2_MAX_RECORD = 65_600;
export const V2_MIN_FRAME = VXLAN_HEADER_LEN + ETH_HEADER_LEN; // 22
export const V2_MAX_FRAME = VXLAN_HEADER_LEN + ETH_MAX_FRAME; // 1530
/** VXLAN + virtio_net_hdr + Ethernet/IPv4/TCP headers at the least. */
export const V2_MIN_OFFLOAD = VXLAN_HEADER_LEN + VNET_HDR_LEN + 54;
export const V2_MAX_OFFLOAD = VXLAN_HEADER_LEN + VNET_HDR_LEN + 65_550;
export const V2_MIN_CONTROL = 4;
export const V2_MAX_CONTROL = 1204;

export const V2_DROPS = ['record-undersize', 'record-too-long', 'record-no-i-flag', 'record-type'] as const;
export type V2Drop = (typeof V2_DROPS)[number];

export interface V2Sink {
  frame(vni: number, frame: Buffer): void;
  offload(vni: number, vnetHdr: Buffer, frame: Buffer): void;
  control(payload: Buffer): void;
  drop(reason: V2Drop): void;
}

const LIMITS: Record<number, readonly [number, number]> = {
  [REC_FRAME]: [V2_MIN_FRAME, V2_MAX_FRAME],
  [REC_OFFLOAD]: [V2_MIN_OFFLOAD, V2_MAX_OFFLOAD],
  [REC_CONTROL]: [V2_MIN_CONTROL, V2_MAX_CONTROL],
};

/** Writes one record header at dst[off]; returns the body offset. RangeError on a programming error. */
export function writeV2Header(dst: Uint8Array, off: number, type: number, bodyLen: number): number {
  const lim = LIMITS[type];
  if (lim === undefined) throw new RangeError(`unknown v2 record type ${type}`);
  if (bodyLen < lim[0] || bodyLen > lim[1])
    throw new RangeError(`a v2 record of type ${type} has ${lim[0]}..${lim[1]} bytes, got ${bodyLen}`);
  if (off < 0 || off + V2_HEADER_LEN + bodyLen > dst.length) throw new RangeError(`no room for a ${bodyLen}-byte v2 record at ${off}`);
  dst[off] = type;
  dst[off + 1] = (bodyLen >>> 16) & 0xff;
  dst[off + 2] = (bodyLen >>> 8) & 0xff;
  dst[off + 3] = bodyLen & 0xff;
  return off + V2_HEADER_LEN;
}

export function encodeFrameV2(vni: number, frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(V2_HEADER_LEN + VXLAN_HEADER_LEN + frame.length);
  const at = writeV2Header(out, 0, REC_FRAME, VXLAN_HEADER_LEN + frame.length);
  writeVxlanHeader(out, at, vni);
  out.set(frame, at + VXLAN_HEADER_LEN);
  return out;
}

export function encodeOffloadV2(vni: number, vnetHdr: Uint8Array, frame: Uint8Array): Buffer {
  if (vnetHdr.length !== VNET_HDR_LEN) throw new RangeError(`virtio_net_hdr is ${VNET_HDR_LEN} bytes, got ${vnetHdr.length}`);
  const body = VXLAN_HEADER_LEN + VNET_HDR_LEN + frame.length;
  const out = Buffer.allocUnsafe(V2_HEADER_LEN + body);
  const at = writeV2Header(out, 0, REC_OFFLOAD, body);
  writeVxlanHeader(out, at, vni);
  out.set(vnetHdr, at + VXLAN_HEADER_LEN);
  out.set(frame, at + VXLAN_HEADER_LEN + VNET_HDR_LEN);
  return out;
}

export function encodeControlV2(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(V2_HEADER_LEN + payload.length);
  out.set(payload, writeV2Header(out, 0, REC_CONTROL, payload.length));
  return out;
}

/**
 * Incremental v2 decoder for one connection. Bodies are views into the pushed chunk, or into a buffer of
 * their own when a record straddles chunks. A bad but well-delimited record is counted and skipped; a
 * length above V2_MAX_RECORD poisons the stream (the caller closes the connection).
 */
export class RecordDecoderV2 {
  #hdr = Buffer.alloc(V2_HEADER_LEN);
  #hdrHave = 0;
  #type = 0;
  #need = -1; // -1: reading a header
  #have = 0;
  #skip = false;
  #partial: Buffer | null = null;
  #poisoned = false;

  constructor(private readonly sink: V2Sink) {}

  get poisoned(): boolean {
    return this.#poisoned;
  }

  push(chunk: Buffer): 'record-oversize' | null {
    if (this.#poisoned) return 'record-oversize';
    let pos = 0;
    const n = chunk.length;
    while (pos < n || this.#need === 0) {
      if (this.#need < 0) {
        const take = Math.min(V2_HEADER_LEN - this.#hdrHave, n - pos);
        chunk.copy(this.#hdr, this.#hdrHave, pos, pos + take);
        this.#hdrHave += take;
        pos += take;
        if (this.#hdrHave < V2_HEADER_LEN) return null;
        this.#hdrHave = 0;
        const len = this.#hdr.readUIntBE(1, 3);
        if (len > V2_MAX_RECORD) {
          this.#poisoned = true;
          return 'record-oversize';
        }
        this.#type = this.#hdr[0] ?? 0;
        this.#need = len;
        this.#have = 0;
        const lim = LIMITS[this.#type];
        this.#skip = true;
        if (lim === undefined) this.sink.drop('record-type');
        else if (len < lim[0]) this.sink.drop('record-undersize');
        else if (len > lim[1]) this.sink.drop('record-too-long');
        else this.#skip = false;
        continue;
      }
      if (this.#skip) {
        const take = Math.min(this.#need - this.#have, n - pos);
        this.#have += take;
        pos += take;
        if (this.#have === this.#need) this.#need = -1;
        continue;
      }
      if (this.#have === 0 && n - pos >= this.#need) {
        const at = pos;
        pos += this.#need;
        this.#need = -1;
        this.#deliver(chunk.subarray(at, pos));
        continue;
      }
      this.#partial ??= Buffer.allocUnsafe(this.#need);
      const take = Math.min(this.#need - this.#have, n - pos);
      chunk.copy(this.#partial, this.#have, pos, pos + take);
      this.#have += take;
      pos += take;
      if (this.#have === this.#need) {
        const done = this.#partial;
        this.#partial = null;
        this.#need = -1;
        this.#deliver(done);
      }
    }
    return null;
  }

  #deliver(body: Buffer): void {
    if (this.#type === REC_CONTROL) {
      this.sink.control(body);
      return;
    }
    if (((body[0] ?? 0) & VXLAN_FLAG_I) === 0) {
      this.sink.drop('record-no-i-flag');
      return;
    }
    const vni = body.readUIntBE(4, 3);
    if (this.#type === REC_FRAME) this.sink.frame(vni, body.subarray(VXLAN_HEADER_LEN));
    else
      this.sink.offload(
        vni,
        body.subarray(VXLAN_HEADER_LEN, VXLAN_HEADER_LEN + VNET_HDR_LEN),
        body.subarray(VXLAN_HEADER_LEN + VNET_HDR_LEN),
      );
  }
}

/** Capabilities a v2 peer may announce; `datagram` is reserved for the datagram channel (not built here). */
export type Capability = 'l2' | 'arp-nd-proxy' | 'offload' | 'datagram';

/** The ALPN list an agent offers for a configured max protocol version (rollback knob). */
export const alpnOffer = (maxProtocol: 1 | 2): string[] => (maxProtocol >= 2 ? [ALPN_V2, ALPN_V1] : [ALPN_V1]);

/** The protocol version for a negotiated ALPN value, or null for anything we do not speak. */
export function protocolOf(alpn: string | false | null | undefined, maxProtocol: 1 | 2): 1 | 2 | null {
  if (alpn === ALPN_V1) return 1;
  if (alpn === ALPN_V2 && maxProtocol >= 2) return 2;
  return null;
}

/**
 * The headend's chosen subset for hello-ack: what both sides offer. On a v1 session nothing is negotiated
 * (a v1 peer never sees v2 fields), and `datagram` is never chosen until the datagram channel exists.
 */
export function chooseCapabilities(version: 1 | 2, offered: readonly string[], ours: readonly Capability[]): Capability[] {
  if (version < 2) return [];
  return ours.filter((c) => c !== 'datagram' && offered.includes(c));
}
