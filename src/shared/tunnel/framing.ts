// SPDX-License-Identifier: UNLICENSED
// The session's stream grammar, chosen per connection by ALPN before the first byte (docs/tunnel-protocol.md):
// version 1 (`u16 length | VXLAN | frame`, control in VNI-0 Ethernet frames) or version 2 (`u8 type | u24
// length | body`: FRAME, OFFLOAD, CONTROL). The session sees one reader and one writer whatever the version,
// so no record is ever parsed with the wrong grammar. Pure.
import { ETH_HEADER_LEN } from '../l2/ethernet.js';
import { VXLAN_HEADER_LEN, writeVxlanHeader } from '../l2/vxlan.js';
import { CONTROL_VNI, decodeControl, encodeControl, isControlFrame, type ControlMessage, type DecodedControl } from './control.js';
import { RECORD_LENGTH_LEN, RecordDecoder, encodeRecord, writeRecord } from './records.js';
import { REC_FRAME, REC_OFFLOAD, RecordDecoderV2, V2_HEADER_LEN, VNET_HDR_LEN, encodeControlV2, writeV2Header } from './records-v2.js';

export type ProtocolVersion = 1 | 2;

/** Where a reader hands what it decoded; views stay valid after the call (both decoders guarantee it). */
export interface FramingSink {
  frame(vni: number, frame: Buffer): void;
  /** A version-2 OFFLOAD record: the 10-byte virtio_net_hdr (unvalidated) and the super-frame. */
  offload(vni: number, vnetHdr: Buffer, frame: Buffer): void;
  control(decoded: DecodedControl): void;
  drop(reason: string): void;
}

export interface StreamReader {
  /** Decodes a chunk; a non-null result is an error after which the stream cannot be resynchronised. */
  push(chunk: Buffer): string | null;
}

export function streamReader(version: ProtocolVersion, sink: FramingSink): StreamReader {
  if (version === 2) {
    const d = new RecordDecoderV2({
      frame: (vni, f) => sink.frame(vni, f),
      offload: (vni, h, f) => sink.offload(vni, h, f),
      control: (payload) => sink.control(decodeControlPayload(payload)),
      drop: (r) => sink.drop(r),
    });
    return { push: (c) => d.push(c) };
  }
  const d = new RecordDecoder(
    (vni, frame) => (isControlFrame(vni, frame) ? sink.control(decodeControl(frame)) : sink.frame(vni, frame)),
    (r) => sink.drop(r),
  );
  return { push: (c) => d.push(c) };
}

const NO_ETH = Buffer.alloc(ETH_HEADER_LEN);

/** A v2 CONTROL body is the v1 control payload without its Ethernet wrapper; control is rare, so re-wrap. */
function decodeControlPayload(payload: Buffer): DecodedControl {
  return decodeControl(Buffer.concat([NO_ETH, payload]));
}

/** One control message as a record of `version`. */
export function controlRecord(version: ProtocolVersion, msg: ControlMessage): Buffer {
  const frame = encodeControl(msg);
  return version === 2 ? encodeControlV2(frame.subarray(ETH_HEADER_LEN)) : encodeRecord(CONTROL_VNI, frame);
}

/** Bytes a data record takes on the stream (`vnetHdr`: an OFFLOAD record, v2 only). */
export function dataRecordSize(version: ProtocolVersion, frameLen: number, offload: boolean): number {
  if (version === 1) return RECORD_LENGTH_LEN + VXLAN_HEADER_LEN + frameLen;
  return V2_HEADER_LEN + VXLAN_HEADER_LEN + (offload ? VNET_HDR_LEN : 0) + frameLen;
}

/**
 * Writes one data record at dst[off] and returns the offset after it. `vnetHdr` makes it an OFFLOAD record
 * (v2 only). RangeError on what no record can carry: callers check lengths first.
 */
export function writeDataRecord(
  version: ProtocolVersion,
  dst: Uint8Array,
  off: number,
  vni: number,
  frame: Uint8Array,
  vnetHdr?: Uint8Array,
): number {
  if (version === 1) {
    if (vnetHdr) throw new RangeError('version 1 has no OFFLOAD record');
    return writeRecord(dst, off, vni, frame);
  }
  const offload = vnetHdr !== undefined;
  const body = VXLAN_HEADER_LEN + (offload ? VNET_HDR_LEN : 0) + frame.length;
  let at = writeV2Header(dst, off, offload ? REC_OFFLOAD : REC_FRAME, body);
  writeVxlanHeader(dst, at, vni);
  at += VXLAN_HEADER_LEN;
  if (offload) {
    if (vnetHdr.length !== VNET_HDR_LEN) throw new RangeError(`virtio_net_hdr is ${VNET_HDR_LEN} bytes, got ${vnetHdr.length}`);
    dst.set(vnetHdr, at);
    at += VNET_HDR_LEN;
  }
  dst.set(frame, at);
  return at + frame.length;
}

/** `capabilities` plus `offload` when it is wanted on a v2 stream (a v1 peer never sees a v2 capability). */
export function withOffload(version: ProtocolVersion, want: boolean, capabilities: readonly string[]): string[] {
  const rest = capabilities.filter((c) => c !== 'offload');
  return version === 2 && want ? [...rest, 'offload'] : rest;
}
