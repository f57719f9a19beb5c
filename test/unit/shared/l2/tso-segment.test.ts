// SPDX-License-Identifier: UNLICENSED
// OFFLOAD records: the virtio_net_hdr validated against the frame (every drop reason), TCP super-frames
// cut into ordinary segments (lengths, ids, seq, flags, both checksums checked by an independent sum),
// and partial checksums completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GSO_ECN,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  VNET_F_NEEDS_CSUM,
  completeChecksum,
  headFrame,
  headView,
  parseOffload,
  segmentOffload,
  toFrames,
  writeVnetHdr,
  type Offload,
  type VnetHdr,
} from '../../../../src/shared/l2/tso-segment.js';
import { segments, superFrame as wireSuperFrame } from '../../../helpers/tcp-segments.js';

/** Ones'-complement sum over 16-bit words, folded: an independent check (0xffff for a valid packet). */
function csum(parts: Uint8Array[]): number {
  let s = 0;
  let odd: number | null = null;
  for (const p of parts)
    for (const b of p) {
      if (odd === null) odd = b;
      else {
        s += (odd << 8) | b;
        odd = null;
      }
    }
  if (odd !== null) s += odd << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

interface Built {
  frame: Buffer;
  vnet: Buffer;
  payload: Buffer;
}

/** An Ethernet (+ `vlans` tags) / IPv4 or IPv6 / TCP (12 bytes of options) super-frame of `payloadLen` bytes. */
function superFrame(o: { ipv6?: boolean; payloadLen: number; mss: number; flags?: number; vlans?: number; ecn?: boolean }): Built {
  const payload = Buffer.alloc(o.payloadLen);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
  const l2 = 14 + 4 * (o.vlans ?? 0);
  const ipLen = o.ipv6 ? 40 : 20;
  const tcpLen = 32;
  const frame = Buffer.alloc(l2 + ipLen + tcpLen + payload.length);
  frame.writeUIntBE(0x020000000002, 0, 6);
  frame.writeUIntBE(0x020000000001, 6, 6);
  let at = 12;
  for (let v = 0; v < (o.vlans ?? 0); v++) {
    frame.writeUInt16BE(v === 0 && (o.vlans ?? 0) > 1 ? 0x88a8 : 0x8100, at);
    frame.writeUInt16BE(10 + v, at + 2);
    at += 4;
  }
  frame.writeUInt16BE(o.ipv6 ? 0x86dd : 0x0800, at);
  const l3 = l2;
  if (o.ipv6) {
    frame[l3] = 0x60;
    frame.writeUInt16BE(tcpLen + payload.length, l3 + 4);
    frame[l3 + 6] = 6;
    frame[l3 + 7] = 64;
    frame.fill(0x11, l3 + 8, l3 + 24);
    frame.fill(0x22, l3 + 24, l3 + 40);
  } else {
    frame[l3] = 0x45;
    frame.writeUInt16BE(ipLen + tcpLen + payload.length, l3 + 2);
    frame.writeUInt16BE(0xfffe, l3 + 4); // the id wraps inside the run
    frame.writeUInt16BE(0x4000, l3 + 6); // DF
    frame[l3 + 8] = 64;
    frame[l3 + 9] = 6;
    frame.writeUInt32BE(0x0a000001, l3 + 12);
    frame.writeUInt32BE(0x0a000002, l3 + 16);
  }
  const l4 = l3 + ipLen;
  frame.writeUInt16BE(40000, l4);
  frame.writeUInt16BE(5201, l4 + 2);
  frame.writeUInt32BE(0xfffff000, l4 + 4); // seq wraps inside the run
  frame.writeUInt32BE(12345, l4 + 8);
  frame[l4 + 12] = (tcpLen / 4) << 4;
  frame[l4 + 13] = o.flags ?? 0x18; // PSH ACK
  frame.writeUInt16BE(501, l4 + 14);
  frame[l4 + 20] = 1;
  frame[l4 + 21] = 1;
  frame[l4 + 22] = 8; // timestamps
  frame[l4 + 23] = 10;
  payload.copy(frame, l4 + tcpLen);
  const vnet = Buffer.alloc(10);
  const hdr: VnetHdr = {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: (o.ipv6 ? GSO_TCPV6 : GSO_TCPV4) | (o.ecn ? GSO_ECN : 0),
    hdrLen: l4 + tcpLen,
    gsoSize: o.mss,
    csumStart: l4,
    csumOffset: 16,
  };
  writeVnetHdr(vnet, 0, hdr);
  return { frame, vnet, payload };
}

function valid(b: Built): Offload {
  const o = parseOffload(b.vnet, b.frame);
  assert.equal(typeof o, 'object', `expected a valid header, got ${String(o)}`);
  return o as Offload;
}

function checkSegments(b: Built, segs: Buffer[], mss: number, ipv6: boolean, vlans = 0): void {
  const l3 = 14 + 4 * vlans;
  const l4 = l3 + (ipv6 ? 40 : 20);
  const h = l4 + 32;
  assert.equal(segs.length, Math.ceil(b.payload.length / mss));
  const data: Buffer[] = [];
  segs.forEach((s, i) => {
    const take = s.length - h;
    assert.ok(take <= mss && take > 0);
    data.push(s.subarray(h));
    if (ipv6) assert.equal(s.readUInt16BE(l3 + 4), s.length - l3 - 40);
    else {
      assert.equal(s.readUInt16BE(l3 + 2), s.length - l3, 'IPv4 total length');
      assert.equal(s.readUInt16BE(l3 + 4), (0xfffe + i) & 0xffff, 'IPv4 id');
      assert.equal(csum([s.subarray(l3, l3 + 20)]), 0xffff, 'IPv4 header checksum');
    }
    assert.equal(s.readUInt32BE(l4 + 4), (0xfffff000 + i * mss) >>> 0, 'seq');
    const pseudo = ipv6
      ? Buffer.concat([s.subarray(l3 + 8, l3 + 40), Buffer.from([0, 0, (s.length - l4) >> 8, (s.length - l4) & 0xff, 0, 0, 0, 6])])
      : Buffer.concat([s.subarray(l3 + 12, l3 + 20), Buffer.from([0, 6, (s.length - l4) >> 8, (s.length - l4) & 0xff])]);
    assert.equal(csum([pseudo, s.subarray(l4)]), 0xffff, `TCP checksum of segment ${i}`);
    const last = i === segs.length - 1;
    assert.equal((s[l4 + 13]! & 0x08) !== 0, last && (b.frame[l4 + 13]! & 0x08) !== 0, 'PSH only on the last');
    assert.equal((s[l4 + 13]! & 0x01) !== 0, last && (b.frame[l4 + 13]! & 0x01) !== 0, 'FIN only on the last');
    assert.equal((s[l4 + 13]! & 0x80) !== 0, i === 0 && (b.frame[l4 + 13]! & 0x80) !== 0, 'CWR only on the first');
    assert.deepEqual(s.subarray(0, l3), b.frame.subarray(0, l3), 'Ethernet header kept');
  });
  assert.deepEqual(Buffer.concat(data), b.payload, 'the payload, in order, byte for byte');
}

test('IPv4 and IPv6 super-frames (with VLAN tags) are cut into valid segments of gso_size or a smaller mss', () => {
  for (const ipv6 of [false, true])
    for (const vlans of [0, 1, 2])
      for (const [payloadLen, mss, smaller] of [
        [65_000, 1448, undefined],
        [64_000, 1448, 1200],
        [1448 * 3, 1448, undefined],
        [100, 1448, undefined],
      ] as const) {
        const b = superFrame({ ipv6, payloadLen, mss, flags: 0x80 | 0x18 | 0x01, vlans, ecn: true });
        const o = valid(b);
        const before = Buffer.from(b.frame);
        const segs: Buffer[] = [];
        const n = segmentOffload(o, b.frame, segs, smaller);
        assert.equal(n, segs.length);
        checkSegments(b, segs, smaller ?? mss, ipv6, vlans);
        assert.deepEqual(b.frame, before, 'the record is never written');
      }
});

test('a plain frame with NEEDS_CSUM gets its TCP or UDP checksum completed', () => {
  const b = superFrame({ payloadLen: 300, mss: 1448 });
  const l4 = 34;
  // The field holds the pseudo-header sum, as the kernel leaves it for CHECKSUM_PARTIAL.
  const len = b.frame.length - l4;
  const pseudo = csum([b.frame.subarray(26, 34), Buffer.from([0, 6, len >> 8, len & 0xff])]);
  b.frame.writeUInt16BE(pseudo, l4 + 16);
  const vnet = Buffer.alloc(10);
  writeVnetHdr(vnet, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: l4, csumOffset: 16 });
  const o = parseOffload(vnet, b.frame) as Offload;
  const out: Buffer[] = [];
  assert.equal(toFrames(o, b.frame, out), 1);
  const full = Buffer.concat([b.frame.subarray(26, 34), Buffer.from([0, 6, len >> 8, len & 0xff])]);
  assert.equal(csum([full, out[0]!.subarray(l4)]), 0xffff);
  // UDP: a sum of 0 is sent as 0xffff.
  const u = Buffer.alloc(20);
  completeChecksum(u, 0, 6);
  assert.equal(u.readUInt16BE(6), 0xffff);
});

test('every malformed header is a named drop reason, never an exception', () => {
  const b = superFrame({ payloadLen: 10_000, mss: 1448 });
  const hdr = (h: Partial<VnetHdr>): Buffer => {
    const v = Buffer.alloc(10);
    writeVnetHdr(v, 0, { flags: 1, gsoType: GSO_TCPV4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16, ...h });
    return v;
  };
  const cases: [string, Buffer, Buffer][] = [
    ['offload-header', Buffer.alloc(9), b.frame],
    ['offload-header', hdr({ flags: 4 }), b.frame],
    ['offload-header', hdr({ gsoSize: 0 }), b.frame],
    ['offload-header', hdr({ gsoSize: 9001 }), b.frame],
    ['offload-gso-type', hdr({ gsoType: 3 }), b.frame],
    ['offload-gso-type', hdr({ gsoType: 5 }), b.frame],
    ['offload-gso-type', hdr({ gsoType: GSO_ECN }), b.frame],
    ['offload-ip', hdr({ gsoType: GSO_TCPV6 }), b.frame],
    ['offload-csum', hdr({ csumStart: 30 }), b.frame],
    ['offload-csum', hdr({ csumOffset: 6 }), b.frame],
    ['offload-segments', hdr({ gsoSize: 10 }), b.frame],
    ['offload-csum', hdr({ gsoType: GSO_NONE, csumOffset: 7 }), b.frame],
    ['offload-csum', hdr({ gsoType: GSO_NONE, csumStart: b.frame.length }), b.frame],
  ];
  const mutate = (f: (x: Buffer) => void): Buffer => {
    const x = Buffer.from(b.frame);
    f(x);
    return x;
  };
  cases.push(['offload-ip', hdr({}), mutate((x) => (x[14 + 9] = 17))]); // UDP
  cases.push(['offload-ip', hdr({}), mutate((x) => x.writeUInt16BE(0x2000, 14 + 6))]); // MF
  cases.push(['offload-ip', hdr({}), mutate((x) => (x[14] = 0x44))]); // ihl 4
  cases.push(['offload-ip', hdr({}), mutate((x) => x.writeUInt16BE(60_000, 14 + 2))]); // longer than the frame
  cases.push(['offload-tcp', hdr({}), mutate((x) => (x[34 + 12] = 0x40))]); // doff 4
  cases.push(['offload-ip', hdr({}), b.frame.subarray(0, 40)]);
  const v6 = superFrame({ ipv6: true, payloadLen: 5000, mss: 1400 });
  const v6ext = Buffer.from(v6.frame);
  v6ext[14 + 6] = 0; // hop-by-hop
  cases.push(['offload-ipv6-ext', v6.vnet, v6ext]);
  for (const [want, v, f] of cases) assert.equal(parseOffload(v, f), want);
});

test("headView has the first segment's Ethernet header and length without building it (headFrame does)", () => {
  for (const [payload, mss] of [
    [10 * 1_000, 1_000],
    [700, 1_448],
    [1_448 * 3 + 5, 1_448],
  ] as const) {
    const s = wireSuperFrame({}, payload, mss);
    const head = headFrame(s.o, s.frame);
    const view = headView(s.o, s.frame);
    assert.equal(view.length, head.length);
    assert.deepEqual(view.subarray(0, 14), head.subarray(0, 14));
    assert.deepEqual(head, segments({}, payload, mss)[0]);
    assert.equal(view.buffer, s.frame.buffer, 'a view, not a copy');
  }
});
