// SPDX-License-Identifier: UNLICENSED
// TCP segments as a sender's stack puts them on the wire (a super-frame cut by segmentOffload: full
// checksums, ids and sequence numbers counting up), for the coalescers' tests.
import assert from 'node:assert/strict';
import {
  GSO_TCPV4,
  GSO_TCPV6,
  VNET_F_NEEDS_CSUM,
  parseOffload,
  segmentOffload,
  writeVnetHdr,
  type Offload,
} from '../../src/shared/l2/tso-segment.js';

export interface Flow {
  ipv6?: boolean;
  sport?: number;
  seq?: number;
  id?: number;
  flags?: number;
}

/** A TCP super-frame (timestamps option) of `payloadLen` bytes with its virtio_net_hdr, and its Offload. */
export function superFrame(f: Flow, payloadLen: number, mss: number): { frame: Buffer; vnet: Buffer; o: Offload; payload: Buffer } {
  const ipLen = f.ipv6 ? 40 : 20;
  const l4 = 14 + ipLen;
  const payload = Buffer.alloc(payloadLen);
  for (let i = 0; i < payloadLen; i++) payload[i] = (i * 13 + (f.sport ?? 0)) & 0xff;
  const frame = Buffer.alloc(l4 + 32 + payloadLen);
  frame.writeUIntBE(0x020000000014, 0, 6);
  frame.writeUIntBE(0x020000000032, 6, 6);
  frame.writeUInt16BE(f.ipv6 ? 0x86dd : 0x0800, 12);
  if (f.ipv6) {
    frame[14] = 0x60;
    frame.writeUInt16BE(32 + payloadLen, 18);
    frame[20] = 6;
    frame[21] = 64;
    frame.fill(0x11, 22, 38);
    frame.fill(0x22, 38, 54);
  } else {
    frame[14] = 0x45;
    frame.writeUInt16BE(20 + 32 + payloadLen, 16);
    frame.writeUInt16BE(f.id ?? 0xfffe, 18); // wraps inside a run
    frame.writeUInt16BE(0x4000, 20);
    frame[22] = 64;
    frame[23] = 6;
    frame.writeUInt32BE(0xc0a80132, 26);
    frame.writeUInt32BE(0xc0a80114, 30);
  }
  frame.writeUInt16BE(f.sport ?? 5201, l4);
  frame.writeUInt16BE(40000, l4 + 2);
  frame.writeUInt32BE(f.seq ?? 0xfffff000, l4 + 4); // wraps inside a run
  frame.writeUInt32BE(777, l4 + 8);
  frame[l4 + 12] = 8 << 4;
  frame[l4 + 13] = f.flags ?? 0x18;
  frame.writeUInt16BE(501, l4 + 14);
  frame.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], l4 + 20);
  payload.copy(frame, l4 + 32);
  const vnet = Buffer.alloc(10);
  writeVnetHdr(vnet, 0, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: f.ipv6 ? GSO_TCPV6 : GSO_TCPV4,
    hdrLen: l4 + 32,
    gsoSize: mss,
    csumStart: l4,
    csumOffset: 16,
  });
  const o = parseOffload(vnet, frame);
  assert.equal(typeof o, 'object');
  return { frame, vnet, o: o as Offload, payload };
}

/** The segments a headend sends for that super-frame: full checksums, ids and seq counting up. */
export function segments(f: Flow, payloadLen: number, mss: number): Buffer[] {
  const s = superFrame(f, payloadLen, mss);
  const out: Buffer[] = [];
  segmentOffload(s.o, s.frame, out);
  return out.map((b) => Buffer.from(b));
}
