// SPDX-License-Identifier: UNLICENSED
// Toward sessions, a VTEP's runs of one flow's TCP segments (a read batch, a GRO run) leave as one
// OFFLOAD record when the session negotiated them, and as the very same frames when it did not; the
// segment's counters say what the frames were either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Forwarder, type SegmentInfo, type SessionPort } from '../../../../src/headend/core/forwarder.js';
import { parseOffload, segmentOffload, type Offload } from '../../../../src/shared/l2/tso-segment.js';
import { segments } from '../../../helpers/tcp-segments.js';

const SEG: SegmentInfo = { vni: 100, name: 'a/lan', vteps: ['10.0.0.1'], multiSite: false };

interface Port extends SessionPort {
  frames: Buffer[];
  supers: { hdr: Buffer; frame: Buffer }[];
}

/** A session port that records; `takes`: it negotiated OFFLOAD records (`accepts`: and its queue takes them). */
function port(takes: boolean, accepts = true): Port {
  const p: Port = {
    frames: [],
    supers: [],
    offload: takes,
    send(f) {
      p.frames.push(Buffer.from(f));
      return true;
    },
    sendOffload(hdr, frame) {
      if (!accepts) return false;
      p.supers.push({ hdr: Buffer.from(hdr), frame: Buffer.from(frame) });
      return true;
    },
  };
  return p;
}

function rig(coalesce = true) {
  const fw = new Forwarder({ send: () => undefined }, { ageMs: 60_000, maxEntries: 100 }, () => 0, { coalesce });
  fw.setSegments([SEG]);
  return fw;
}

/** What a port received, as the frames on the wire beyond it: super-frames cut again. */
function wire(p: Port): Buffer[] {
  const out = [...p.frames];
  for (const s of p.supers) {
    const o = parseOffload(s.hdr, s.frame);
    assert.equal(typeof o, 'object', 'a valid OFFLOAD header');
    const segs: Buffer[] = [];
    segmentOffload(o as Offload, s.frame, segs);
    out.push(...segs.map((b) => Buffer.from(b)));
  }
  return out;
}

test('a run of one flow from a VTEP reaches a session taking OFFLOAD records as one, the same segments once cut', () => {
  const fw = rig();
  const p = port(true);
  fw.attach(100, 's1', p);
  const segs = segments({}, 20 * 1_448, 1_448);
  fw.fromVtepBatch('10.0.0.1', 100, segs);
  assert.equal(p.supers.length, 1);
  assert.equal(p.frames.length, 0);
  assert.equal((parseOffload(p.supers[0]?.hdr ?? Buffer.alloc(0), p.supers[0]?.frame ?? Buffer.alloc(0)) as Offload).mss, 1_448);
  assert.deepEqual(wire(p), segs);
  assert.deepEqual(fw.vtepCoalesce, { superFrames: 1, segments: 20, badChecksum: 0 });
  const st = [...fw.segmentStats()][0]?.stats;
  const bytes = segs.reduce((n, s) => n + s.length, 0);
  assert.deepEqual(st?.vtepIn, { frames: 20, bytes });
  assert.deepEqual(st?.tunnelOut, { frames: 20, bytes });
});

test('a session without OFFLOAD records (or a queue that refuses one) gets the frames as they came, one by one', () => {
  for (const p of [port(false), port(true, false)]) {
    const fw = rig();
    fw.attach(100, 's1', p);
    const segs = segments({}, 10 * 1_000, 1_000);
    fw.fromVtepBatch('10.0.0.1', 100, segs);
    assert.equal(p.supers.length, 0);
    assert.deepEqual(p.frames, segs);
    assert.deepEqual([...fw.segmentStats()][0]?.stats.tunnelOut.frames, 10);
  }
});

test('vxlan.coalesce off: frames one by one even to a session taking OFFLOAD records', () => {
  const fw = rig(false);
  const p = port(true);
  fw.attach(100, 's1', p);
  const segs = segments({}, 10 * 1_000, 1_000);
  fw.fromVtepBatch('10.0.0.1', 100, segs);
  assert.equal(p.supers.length, 0);
  assert.deepEqual(p.frames, segs);
  assert.equal(fw.vtepCoalesce.superFrames, 0);
});

test('two interleaved flows each arrive whole and in order; a frame of another kind keeps its place', () => {
  const fw = rig();
  const p = port(true);
  fw.attach(100, 's1', p);
  const a = segments({ sport: 1 }, 6 * 1_000, 1_000);
  const b = segments({ sport: 2 }, 6 * 1_000, 1_000);
  const arp = Buffer.alloc(60);
  arp.writeUIntBE(0xffffffffffff, 0, 6);
  arp.writeUIntBE(0x020000000099, 6, 6);
  arp.writeUInt16BE(0x0806, 12);
  const batch = [...a.slice(0, 3), ...b.slice(0, 3), arp, ...a.slice(3), ...b.slice(3)];
  fw.fromVtepBatch('10.0.0.1', 100, batch);
  const got = wire(p);
  const port1 = (f: Buffer): number => f.readUInt16BE(34);
  assert.deepEqual(
    got.filter((f) => f.length > 60 && port1(f) === 1),
    a,
  );
  assert.deepEqual(
    got.filter((f) => f.length > 60 && port1(f) === 2),
    b,
  );
  assert.equal(got.length, 13);
  assert.equal(fw.vtepCoalesce.superFrames, 4);
});

test('a batch from a VTEP outside the segment, or for an unknown VNI, is dropped frame by frame', () => {
  const fw = rig();
  const p = port(true);
  fw.attach(100, 's1', p);
  const segs = segments({}, 5 * 1_000, 1_000);
  fw.fromVtepBatch('10.9.9.9', 100, segs);
  fw.fromVtepBatch('10.0.0.1', 999, segs);
  assert.equal(fw.drops['vtep-not-in-segment'], 5);
  assert.equal(fw.drops['unknown-vni'], 5);
  assert.equal(p.frames.length + p.supers.length, 0);
});

test('a corrupt segment passes alone, counted, and the session still gets it to drop at the host', () => {
  const fw = rig();
  const p = port(true);
  fw.attach(100, 's1', p);
  const segs = segments({}, 8 * 1_000, 1_000);
  const bad = segs[4] as Buffer;
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff;
  fw.fromVtepBatch('10.0.0.1', 100, segs);
  assert.equal(fw.vtepCoalesce.badChecksum, 1);
  assert.deepEqual(p.frames, [bad]);
  assert.equal(wire(p).length, 8);
});
