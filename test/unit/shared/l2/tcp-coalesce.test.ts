// SPDX-License-Identifier: UNLICENSED
// Receive coalescing toward the LAN: segments cut from a super-frame (segmentOffload, as the headend cuts
// them) come back together as that super-frame, which the kernel would cut into the very same segments;
// everything the kernel's GRO would not merge (another flow, a gap, PSH, SYN/FIN, a bad checksum,
// options, VLAN tags, fragments, pure ACKs) passes alone, and no frame changes its place among its flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpCoalescer, type CoalesceSink } from '../../../../src/shared/l2/tcp-coalesce.js';
import { segments } from '../../../helpers/tcp-segments.js';
import {
  GSO_TCPV4,
  GSO_TCPV6,
  VNET_F_NEEDS_CSUM,
  completeChecksum,
  parseOffload,
  readVnetHdr,
  segmentOffload,
  type Offload,
} from '../../../../src/shared/l2/tso-segment.js';

/** Ones'-complement sum over 16-bit words, folded: an independent check (0xffff for a valid packet). */
function csum(parts: Uint8Array[]): number {
  const b = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

type Out = { kind: 'plain'; frame: Buffer } | { kind: 'super'; hdr: Buffer; frame: Buffer; n: number };

function run(frames: Buffer[]): { out: Out[]; c: TcpCoalescer } {
  const out: Out[] = [];
  const sink: CoalesceSink = {
    plain: (fs) => fs.forEach((f) => out.push({ kind: 'plain', frame: Buffer.from(f) })),
    superFrame: (hdr, frame, n) => out.push({ kind: 'super', hdr: Buffer.from(hdr), frame: Buffer.from(frame), n }),
  };
  const c = new TcpCoalescer();
  c.coalesce(frames, sink);
  return { out, c };
}

/** The super-frame as the kernel sees it, cut again as the kernel would: the segments it delivers. */
function recut(o: { hdr: Buffer; frame: Buffer }): Buffer[] {
  const p = parseOffload(o.hdr, o.frame);
  assert.equal(typeof p, 'object', `a valid virtio_net_hdr for the super-frame, got ${String(p)}`);
  const out: Buffer[] = [];
  segmentOffload(p as Offload, o.frame, out);
  return out.map((b) => Buffer.from(b));
}

for (const ipv6 of [false, true]) {
  const v = ipv6 ? 'IPv6' : 'IPv4';
  test(`${v}: a super-frame's segments come back as that super-frame, which the kernel cuts into the same segments`, () => {
    const segs = segments({ ipv6 }, 44 * 1448 - 100, 1448); // a short last segment, PSH on it
    const { out, c } = run(segs);
    assert.equal(out.length, 1);
    const o = out[0]!;
    assert.ok(o.kind === 'super');
    assert.equal(o.n, 44);
    const h = readVnetHdr(o.hdr);
    const l4 = ipv6 ? 54 : 34;
    assert.deepEqual(h, {
      flags: VNET_F_NEEDS_CSUM,
      gsoType: ipv6 ? GSO_TCPV6 : GSO_TCPV4,
      hdrLen: l4 + 32,
      gsoSize: 1448,
      csumStart: l4,
      csumOffset: 16,
    });
    if (!ipv6) assert.equal(csum([o.frame.subarray(14, 34)]), 0xffff, 'IPv4 header checksum of the super-frame');
    assert.equal(o.frame[l4 + 13], 0x18, 'PSH of the last segment kept');
    // Completed as a NIC or the stack would, the TCP checksum covers the whole super-frame.
    const whole = Buffer.from(o.frame);
    completeChecksum(whole, l4, 16);
    const tcpLen = whole.length - l4;
    const pseudo = ipv6
      ? Buffer.concat([whole.subarray(22, 54), Buffer.from([0, 0, tcpLen >> 8, tcpLen & 0xff, 0, 0, 0, 6])])
      : Buffer.concat([whole.subarray(26, 34), Buffer.from([0, 6, tcpLen >> 8, tcpLen & 0xff])]);
    assert.equal(csum([pseudo, whole.subarray(l4)]), 0xffff, 'TCP checksum over the super-frame');
    assert.deepEqual(recut(o), segs, 'cut again: the same segments, byte for byte');
    assert.deepEqual(c.counters, { superFrames: 1, segments: 44, badChecksum: 0 });
  });
}

test('runs end at 64 segments and at 64,000 payload bytes; the rest starts a new run', () => {
  const small = segments({}, 100 * 500, 500);
  const a = run(small).out;
  assert.deepEqual(
    a.map((o) => (o.kind === 'super' ? o.n : 1)),
    [64, 36],
  );
  assert.deepEqual([...recut(a[0] as { hdr: Buffer; frame: Buffer }), ...recut(a[1] as { hdr: Buffer; frame: Buffer })], small);
  const big = [
    ...segments({ flags: 0x10, seq: 0, id: 0 }, 30 * 1448, 1448),
    ...segments({ flags: 0x10, seq: 30 * 1448, id: 30 }, 30 * 1448, 1448),
  ];
  const b = run(big).out;
  assert.deepEqual(
    b.map((o) => (o.kind === 'super' ? o.n : 1)),
    [44, 16],
  );
});

test('two flows interleaved by super-frame stay whole each, in their order; a lone segment stays plain', () => {
  const a1 = segments({ sport: 1001, seq: 0 }, 10 * 1000, 1000);
  const b1 = segments({ sport: 1002, seq: 0 }, 5 * 1000, 1000);
  const a2 = segments({ sport: 1001, seq: 10_000, id: (0xfffe + 10) & 0xffff }, 1000, 1000);
  const { out } = run([...a1, ...b1, ...a2]);
  assert.deepEqual(
    out.map((o) => `${o.kind}:${o.kind === 'super' ? o.n : 1}:${o.frame.readUInt16BE(34)}`),
    ['super:10:1001', 'super:5:1002', 'plain:1:1001'],
  );
  assert.deepEqual(out[2]!.frame, a2[0]);
});

test('a gap in sequence, a repeated segment, a PSH or a short segment ends a run; the frames keep their order', () => {
  const segs = segments({ flags: 0x10 }, 12 * 1000, 1000);
  // A lost segment (5) and a retransmission of 8 after 9.
  const input = [...segs.slice(0, 5), ...segs.slice(6, 10), segs[8]!, ...segs.slice(10)];
  const { out } = run(input);
  assert.deepEqual(
    out.map((o) => (o.kind === 'super' ? o.n : 1)),
    [5, 4, 1, 2],
  );
  const flat = out.flatMap((o) => (o.kind === 'super' ? recut(o) : [o.frame]));
  assert.deepEqual(flat, input, 'what the LAN gets, cut again, is the input in its order');
  // IPv6 has no id to betray the gap: the sequence numbers alone.
  const six = segments({ ipv6: true, flags: 0x10 }, 12 * 1000, 1000);
  const input6 = [...six.slice(0, 5), ...six.slice(6, 10), six[8]!, ...six.slice(10)];
  assert.deepEqual(
    run(input6).out.map((o) => (o.kind === 'super' ? o.n : 1)),
    [5, 4, 1, 2],
  );

  const psh = segments({ flags: 0x10 }, 6 * 1000, 1000);
  psh[2]![34 + 13] = 0x18; // PSH in the middle: its checksum fixed up below
  const fix = (f: Buffer): Buffer => {
    f.writeUInt16BE(0, 34 + 16);
    const tcpLen = f.length - 34;
    const s = csum([f.subarray(26, 34), Buffer.from([0, 6, tcpLen >> 8, tcpLen & 0xff]), f.subarray(34)]);
    f.writeUInt16BE(~s & 0xffff, 34 + 16);
    return f;
  };
  fix(psh[2]!);
  assert.deepEqual(
    run(psh).out.map((o) => (o.kind === 'super' ? o.n : 1)),
    [3, 3],
  );
});

test('a segment with a bad TCP checksum passes alone and counted, so the LAN host still drops it', () => {
  const segs = segments({}, 8 * 1000, 1000);
  segs[3]![34 + 32 + 5]! ^= 0x40;
  const { out, c } = run(segs);
  assert.deepEqual(
    out.map((o) => `${o.kind}:${o.kind === 'super' ? o.n : 1}`),
    ['super:3', 'plain:1', 'super:4'],
  );
  assert.deepEqual(out[1]!.frame, segs[3], 'unchanged, bad checksum and all');
  assert.equal(c.counters.badChecksum, 1);
});

test('what GRO would not merge passes untouched: SYN, FIN, pure ACKs, IP options, VLAN tags, fragments, UDP, ARP', () => {
  const base = segments({ flags: 0x10 }, 3 * 1000, 1000);
  const variants: Record<string, (f: Buffer) => Buffer> = {
    syn: (f) => ((f[47] = 0x12), f),
    fin: (f) => ((f[47] = 0x11), f),
    'pure ACK': (f) => {
      const g = Buffer.from(f.subarray(0, 66));
      g.writeUInt16BE(52, 16);
      return g;
    },
    'IP options': (f) => ((f[14] = 0x46), f),
    'VLAN tag': (f) => Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x0a]), f.subarray(12)]),
    'more fragments': (f) => ((f[20] = 0x20), f),
    udp: (f) => ((f[23] = 17), f),
    arp: (f) => ((f[12] = 0x08), (f[13] = 0x06), f),
  };
  for (const [name, change] of Object.entries(variants)) {
    const frames = base.map((f) => change(Buffer.from(f)));
    const { out, c } = run(frames);
    assert.ok(
      out.every((o) => o.kind === 'plain'),
      `${name}: every frame plain`,
    );
    assert.deepEqual(
      out.map((o) => o.frame),
      frames,
      `${name}: unchanged, in order`,
    );
    assert.equal(c.counters.superFrames, 0);
  }
});

test('segments of one flow that differ in window, ack or TOS, or whose IPv4 id does not count up, are not merged', () => {
  const changes: [string, (f: Buffer) => void][] = [
    ['window', (f) => f.writeUInt16BE(999, 34 + 14)],
    ['ack', (f) => f.writeUInt32BE(778, 34 + 8)],
    ['TOS (ECN CE)', (f) => (f[15] = 3)],
    ['IPv4 id', (f) => f.writeUInt16BE(7, 18)],
  ];
  for (const [name, change] of changes) {
    const segs = segments({ flags: 0x10 }, 4 * 1000, 1000);
    change(segs[2]!);
    // Only the fields above differ; the checksums are not checked first for this test's purpose: fix them.
    const f = segs[2]!;
    f.writeUInt16BE(0, 24);
    f.writeUInt16BE(~csum([f.subarray(14, 34)]) & 0xffff, 24);
    f.writeUInt16BE(0, 34 + 16);
    const tcpLen = f.length - 34;
    f.writeUInt16BE(~csum([f.subarray(26, 34), Buffer.from([0, 6, tcpLen >> 8, tcpLen & 0xff]), f.subarray(34)]) & 0xffff, 34 + 16);
    const { out } = run(segs);
    assert.deepEqual(
      out.map((o) => (o.kind === 'super' ? o.n : 1)),
      [2, 1, 1],
      `${name}: the run breaks before the changed segment, and the next one differs from it in turn`,
    );
  }
});
