// SPDX-License-Identifier: UNLICENSED
// Fuzz: over a million random and mutated frames through every L2 decoder, and over a million stream
// chunks through the record decoder. No exception may escape, every rejection must be a reason from the
// exported unions, accepted views must be self-consistent, and the heap must stay bounded.
// Re-run a failure with CK_FUZZ_SEED=<seed printed>; CK_FUZZ_FRAMES / CK_FUZZ_CHUNKS scale the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ARP_DROPS, ARP_KINDS, encodeArp, encodeGratuitousArp, newArpView, parseArp } from '../../src/agent/core/l2/arp.js';
import {
  encodeEthernet,
  ETH_MAX_FRAME,
  ETHERNET_DROPS,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  newEthernetView,
  parseEthernet,
} from '../../src/shared/l2/ethernet.js';
import { encodeIpv4Udp, IPV4_DROPS, newIpv4View, parseIpv4, parseIpv4Udp } from '../../src/agent/core/l2/ipv4.js';
import { encodeNa, encodeNs, ND_DROPS, ND_KINDS, newNdView, parseIpv6, parseNd } from '../../src/agent/core/l2/nd.js';
import { encodeRecord, MAX_RECORD, RecordDecoder, STREAM_DROPS, STREAM_ERRORS, type StreamDrop } from '../../src/shared/tunnel/records.js';
import { readVxlanVni, VXLAN_DROPS, VXLAN_HEADER_LEN, VXLAN_MAX_VNI, VXLAN_UDP_PORT, writeVxlanHeader } from '../../src/shared/l2/vxlan.js';
import { encodeControlV2, encodeFrameV2, encodeOffloadV2, RecordDecoderV2, V2_DROPS } from '../../src/shared/tunnel/records-v2.js';
import { MAX_SEGMENTS, OFFLOAD_DROPS, parseOffload, toFrames, writeVnetHdr } from '../../src/shared/l2/tso-segment.js';
import { readPcap } from '../helpers/pcap.js';
import { prng, randInt, seedFromEnv } from '../helpers/prng.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/l2/kernel-frames.pcap', import.meta.url));
const envInt = (name: string, def: number): number => {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : def;
};

function gcFn(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => {};
}

/** Seeds: every frame the kernel produced in the fixture plus every kind of frame our encoders build. */
function corpus(): Buffer[] {
  const out: Buffer[] = readPcap(readFileSync(FIXTURE)).records.map((r) => Buffer.from(r.data));
  const A = 0x02005e100001;
  const B = 0x02005e100002;
  const ip6a = parseIpv6('2001:db8::a');
  const ip6b = parseIpv6('2001:db8::b');
  const ns = encodeNs({ srcMac: A, srcIp: ip6a, targetIp: ip6b });
  const arp = encodeArp({ op: 1, senderMac: A, senderIp: parseIpv4('192.0.2.1'), targetMac: 0, targetIp: parseIpv4('192.0.2.2') });
  const vx = (inner: Buffer): Buffer => {
    const p = Buffer.alloc(VXLAN_HEADER_LEN + inner.length);
    writeVxlanHeader(p, 0, 77);
    inner.copy(p, VXLAN_HEADER_LEN);
    const ip = encodeIpv4Udp({ src: 1, dst: 2, srcPort: 50000, dstPort: VXLAN_UDP_PORT, payload: p });
    return encodeEthernet({ dst: B, src: A, etherType: ETHERTYPE_IPV4, payload: ip });
  };
  out.push(
    arp,
    encodeArp({ op: 2, senderMac: B, senderIp: 2, targetMac: A, targetIp: 1 }),
    encodeGratuitousArp(A, 5),
    encodeGratuitousArp(A, 5, 2),
    encodeArp({ op: 1, senderMac: A, senderIp: 0, targetMac: 0, targetIp: 9, vlans: [{ tpid: ETHERTYPE_QINQ, tci: 1 }, { tci: 2 }] }),
    ns,
    encodeNs({ srcMac: A, srcIp: parseIpv6('::'), targetIp: ip6a }),
    encodeNa({ srcMac: B, srcIp: ip6b, dstIp: ip6a, ethDst: A, targetIp: ip6b, router: true, solicited: true, override: true }),
    encodeNa({ srcMac: A, srcIp: ip6a, targetIp: ip6a, router: false, solicited: false, override: true, vlans: [{ tci: 3 }] }),
    vx(arp),
    vx(ns),
    encodeEthernet({
      dst: B,
      src: A,
      etherType: ETHERTYPE_IPV4,
      payload: encodeIpv4Udp({ src: 1, dst: 0xffffffff, srcPort: 67, dstPort: 68, payload: Buffer.alloc(240) }),
    }),
  );
  return out;
}

type Counts = Map<string, number>;
const bump = (c: Counts, k: string): void => {
  c.set(k, (c.get(k) ?? 0) + 1);
};

const ETH = new Set<string>(ETHERNET_DROPS);
const ARP = new Set<string>(ARP_DROPS);
const ND = new Set<string>([...ND_DROPS, 'not-nd']);
const IP4 = new Set<string>(IPV4_DROPS);
const VX = new Set<string>(VXLAN_DROPS);
const ARPK = new Set<string>(ARP_KINDS);
const NDK = new Set<string>(ND_KINDS);

/** Every decoder over one frame; throws (test failure) on any inconsistency. */
function decodeAll(frame: Buffer, counts: Counts, rand: () => number, depth = 0): void {
  const eth = newEthernetView();
  const e = parseEthernet(frame, eth);
  if (e !== null) {
    if (!ETH.has(e)) throw new Error(`parseEthernet returned ${String(e)}`);
    bump(counts, e);
  } else {
    if (eth.l3Offset < 14 || eth.l3Offset > 22 || eth.l3Offset > frame.length || eth.vlanCount > 2) throw new Error('bad Ethernet view');
    if (frame.length > ETH_MAX_FRAME) throw new Error('oversize frame accepted');
    bump(counts, 'eth-ok');
  }
  // The L3 decoders also get arbitrary offsets, as a confused caller might pass.
  const l3 = e === null ? eth.l3Offset : randInt(rand, -2, frame.length + 2);
  const arp = newArpView();
  const a = parseArp(frame, l3, arp);
  if (a !== null && !ARP.has(a)) throw new Error(`parseArp returned ${String(a)}`);
  if (a === null && !ARPK.has(arp.kind)) throw new Error(`ARP kind ${arp.kind}`);
  if (e === null && eth.etherType === ETHERTYPE_ARP) bump(counts, a ?? `arp:${arp.kind}`);
  const nd = newNdView();
  const n = parseNd(frame, l3, nd);
  if (n !== null && !ND.has(n)) throw new Error(`parseNd returned ${String(n)}`);
  if (n === null && (!NDK.has(nd.kind) || nd.targetIp.length !== 16 || nd.srcIp.length !== 16)) throw new Error('bad ND view');
  if (e === null && eth.etherType === ETHERTYPE_IPV6) bump(counts, n ?? `nd:${nd.kind}`);
  const ip = newIpv4View();
  const i = parseIpv4Udp(frame, l3, ip);
  if (i !== null && !IP4.has(i)) throw new Error(`parseIpv4Udp returned ${String(i)}`);
  if (e === null && eth.etherType === ETHERTYPE_IPV4) bump(counts, i ?? 'ipv4-ok');
  if (i === null && ip.l4Offset + 8 > frame.length && ip.dstPort !== -1) throw new Error('UDP ports read past the end');
  const vxOff = i === null ? ip.l4Offset + 8 : randInt(rand, -1, frame.length + 1);
  const v = readVxlanVni(frame, vxOff);
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > VXLAN_MAX_VNI) throw new Error(`VNI ${v}`);
  } else if (!VX.has(v)) throw new Error(`readVxlanVni returned ${String(v)}`);
  if (e === null && i === null && ip.dstPort === VXLAN_UDP_PORT && typeof v === 'number' && depth === 0) {
    bump(counts, 'vxlan-ok');
    decodeAll(frame.subarray(vxOff + VXLAN_HEADER_LEN, Math.min(frame.length, eth.l3Offset + ip.totalLen)), counts, rand, 1);
  } else if (e === null && i === null && ip.dstPort === VXLAN_UDP_PORT) {
    bump(counts, typeof v === 'number' ? 'vxlan-ok' : v);
  }
}

const INTERESTING_TYPES = [ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, ETHERTYPE_QINQ, 0x05dc, 0x05ff, 0x0600, 0];

test('fuzz: a million random and mutated frames through every decoder', (t) => {
  const seed = seedFromEnv('CK_FUZZ_SEED');
  const rand = prng(seed);
  const total = envInt('CK_FUZZ_FRAMES', 1_000_000);
  console.log(`fuzz frames: seed ${seed} (re-run with CK_FUZZ_SEED=${seed})`);
  const seeds = corpus();
  // A pool of random bytes: random inputs are windows into it, which keeps generation cheap.
  const pool = Buffer.alloc(1 << 20);
  for (let i = 0; i < pool.length; i++) pool[i] = (rand() * 256) | 0;
  const scratch = Buffer.alloc(2048);
  const counts: Counts = new Map();
  const gc = gcFn();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let last: Buffer = Buffer.alloc(0);
  try {
    for (let n = 0; n < total; n++) {
      const base = seeds[(rand() * seeds.length) | 0]!;
      let frame: Buffer;
      switch ((rand() * 6) | 0) {
        case 0: {
          // Random bytes, random length (0..1600 covers short, legal and oversize).
          const len = randInt(rand, 0, 1600);
          const off = randInt(rand, 0, pool.length - len);
          frame = pool.subarray(off, off + len);
          break;
        }
        case 1: {
          // Bit flips in a seed frame.
          base.copy(scratch, 0);
          const flips = randInt(rand, 1, 8);
          for (let k = 0; k < flips; k++) scratch[(rand() * base.length) | 0]! ^= 1 << ((rand() * 8) | 0);
          frame = scratch.subarray(0, base.length);
          break;
        }
        case 2:
          // Truncation anywhere.
          frame = base.subarray(0, randInt(rand, 0, base.length));
          break;
        case 3: {
          // Extension with random bytes, past the maximum sometimes.
          base.copy(scratch, 0);
          const len = Math.min(scratch.length, base.length + randInt(rand, 1, 1600));
          pool.copy(scratch, base.length, 0, len - base.length);
          frame = scratch.subarray(0, len);
          break;
        }
        case 4: {
          // Random values in the fields that carry lengths and types.
          base.copy(scratch, 0);
          const targets = [12, 16, 20, 14 + 4, 14 + 6, 14 + 7, 14 + 40, 14 + 41, 14 + 2, 14 + 9, 18, 22, 78, 79];
          const k = randInt(rand, 1, 3);
          for (let j = 0; j < k; j++) {
            const at = targets[(rand() * targets.length) | 0]!;
            if (at < base.length)
              scratch[at] = rand() < 0.5 ? (rand() * 256) | 0 : [0, 1, 0xff, 0x86, 0x08, 255, 58, 135, 136][(rand() * 9) | 0]!;
          }
          frame = scratch.subarray(0, base.length);
          break;
        }
        default: {
          // A plausible header with an interesting EtherType and a random body.
          const len = randInt(rand, 14, 1530);
          pool.copy(scratch, 0, (rand() * (pool.length - len)) | 0);
          scratch.writeUInt16BE(INTERESTING_TYPES[(rand() * INTERESTING_TYPES.length) | 0]!, 12);
          if (rand() < 0.5) scratch.writeUInt16BE(INTERESTING_TYPES[(rand() * INTERESTING_TYPES.length) | 0]!, 16);
          if (rand() < 0.3) scratch.writeUInt16BE(INTERESTING_TYPES[(rand() * INTERESTING_TYPES.length) | 0]!, 20);
          frame = scratch.subarray(0, len);
        }
      }
      last = frame;
      decodeAll(frame, counts, rand);
    }
  } catch (err) {
    assert.fail(`seed ${seed}: ${String(err)} on frame ${last.toString('hex')}`);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - heapBefore;
  const summary = [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`fuzz frames: ${total} frames, heap +${(grown / 1e6).toFixed(1)} MB; ${summary}`);
  t.diagnostic(`${total} frames (seed ${seed}): ${summary}`);
  assert.ok(grown < 64e6, `heap grew by ${grown} bytes`);
  // The run must have reached the interesting paths, not only the first checks.
  for (const k of [
    'eth-ok',
    'eth-short',
    'eth-oversize',
    'eth-bad-length',
    'eth-too-many-tags',
    'arp:request',
    'arp:probe',
    'arp:gratuitous',
    'arp-unsupported',
    'arp-short',
    'nd:ns',
    'nd:dad-ns',
    'nd:na-solicited',
    'nd:na-unsolicited',
    'nd-bad-checksum',
    'nd-short',
    'nd-bad-hop-limit',
    'not-nd',
    'ipv4-ok',
    'vxlan-ok',
  ]) {
    if (total >= 1_000_000) assert.ok((counts.get(k) ?? 0) > 0, `fuzz never reached ${k} (seed ${seed})`);
  }
});

test('fuzz: a million stream chunks through the record decoder', (t) => {
  const seed = seedFromEnv('CK_FUZZ_SEED');
  const rand = prng(seed ^ 0x5bd1e995);
  const totalChunks = envInt('CK_FUZZ_CHUNKS', 1_000_000);
  console.log(`fuzz stream: seed ${seed} (re-run with CK_FUZZ_SEED=${seed})`);
  const seeds = corpus().filter((f) => f.length >= 14 && f.length <= ETH_MAX_FRAME);
  const counts: Counts = new Map();
  const gc = gcFn();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let chunks = 0;
  let sessions = 0;
  let records = 0;
  while (chunks < totalChunks) {
    sessions++;
    // A stream of legal records with undersize, no-I-flag and (sometimes) an oversize length mixed in.
    const parts: Buffer[] = [];
    const want: Array<{ vni: number; len: number }> = [];
    const wantDrops: StreamDrop[] = [];
    let poisonAt = -1;
    const nrec = randInt(rand, 1, 40);
    for (let r = 0; r < nrec; r++) {
      const x = rand();
      if (x < 0.05) {
        const len = randInt(rand, 0, 21);
        const b = Buffer.alloc(2 + len, 0x08);
        b.writeUInt16BE(len, 0);
        parts.push(b);
        wantDrops.push('record-undersize');
      } else if (x < 0.1) {
        const rec = encodeRecord(randInt(rand, 0, VXLAN_MAX_VNI), seeds[(rand() * seeds.length) | 0]!);
        rec[2] = rec[2]! & ~0x08;
        parts.push(rec);
        wantDrops.push('record-no-i-flag');
      } else if (x < 0.12 && poisonAt < 0) {
        const b = Buffer.alloc(2 + randInt(rand, 0, 64));
        b.writeUInt16BE(randInt(rand, MAX_RECORD + 1, 0xffff), 0);
        poisonAt = parts.length;
        parts.push(b);
      } else {
        const f = seeds[(rand() * seeds.length) | 0]!;
        const vni = randInt(rand, 0, VXLAN_MAX_VNI);
        const rec = encodeRecord(vni, f);
        // Reserved bits set at random must be ignored.
        if (rand() < 0.2) rec[3] = (rand() * 256) | 0;
        if (rand() < 0.2) rec[9] = (rand() * 256) | 0;
        parts.push(rec);
        if (poisonAt < 0) want.push({ vni, len: f.length });
      }
    }
    const stream = Buffer.concat(parts);
    // A tenth of the streams also get random bit flips: then only the invariants are checked.
    const mutated = rand() < 0.1;
    if (mutated) for (let k = randInt(rand, 1, 4); k > 0; k--) stream[(rand() * stream.length) | 0]! ^= 1 << ((rand() * 8) | 0);
    const got: Array<{ vni: number; len: number }> = [];
    const drops: StreamDrop[] = [];
    const d = new RecordDecoder(
      (vni, frame) => {
        if (vni < 0 || vni > VXLAN_MAX_VNI || frame.length < 14 || frame.length > ETH_MAX_FRAME)
          throw new Error(`bad record vni ${vni} len ${frame.length}`);
        got.push({ vni, len: frame.length });
      },
      (r) => {
        if (!(STREAM_DROPS as readonly string[]).includes(r)) throw new Error(`drop ${String(r)}`);
        drops.push(r);
        bump(counts, r);
      },
    );
    // Chunking: byte by byte, whole, or random splits (many records per chunk and records split).
    const mode = rand();
    let errors = 0;
    for (let pos = 0; pos < stream.length;) {
      const step = mode < 0.05 ? 1 : mode < 0.1 ? stream.length : randInt(rand, 1, rand() < 0.5 ? 16 : 3000);
      const chunk = stream.subarray(pos, pos + step);
      pos += chunk.length;
      chunks++;
      const err = d.push(chunk);
      if (err !== null) {
        if (!(STREAM_ERRORS as readonly string[]).includes(err)) throw new Error(`error ${String(err)}`);
        // Counted once per stream: every later push repeats the same error.
        if (errors++ === 0) bump(counts, err);
        if (!d.poisoned) throw new Error('error without poison');
      }
    }
    if (d.buffered > MAX_RECORD + 1) throw new Error(`decoder holds ${d.buffered} bytes`);
    records += got.length;
    if (!mutated) {
      assert.deepEqual(got, want, `seed ${seed} session ${sessions}`);
      assert.equal(d.poisoned, poisonAt >= 0, `seed ${seed} session ${sessions}`);
      if (poisonAt < 0) assert.deepEqual(drops, wantDrops, `seed ${seed} session ${sessions}`);
      assert.equal(errors > 0, poisonAt >= 0);
    }
  }
  gc();
  const grown = process.memoryUsage().heapUsed - heapBefore;
  const summary = [...counts].map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`fuzz stream: ${chunks} chunks in ${sessions} streams, ${records} records, heap +${(grown / 1e6).toFixed(1)} MB; ${summary}`);
  t.diagnostic(`${chunks} chunks, ${sessions} streams, ${records} records (seed ${seed}): ${summary}`);
  assert.ok(grown < 64e6, `heap grew by ${grown} bytes`);
});

/** A TCP/IPv4 or IPv6 super-frame with a matching virtio_net_hdr (valid before any mutation). */
function superFrame(rand: () => number): { vnet: Buffer; frame: Buffer } {
  const ipv6 = rand() < 0.5;
  const payload = randInt(rand, 1, 64_000);
  const l4 = ipv6 ? 54 : 34;
  const frame = Buffer.alloc(l4 + 20 + payload, 0x5a);
  frame.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 12);
  if (ipv6) {
    frame[14] = 0x60;
    frame.writeUInt16BE(20 + payload, 18);
    frame[20] = 6;
  } else {
    frame[14] = 0x45;
    frame.writeUInt16BE(40 + payload, 16);
    frame.writeUInt16BE(0, 20);
    frame[23] = 6;
  }
  frame[l4 + 12] = 0x50;
  const vnet = Buffer.alloc(10);
  const mss = randInt(rand, Math.max(1, Math.ceil(payload / 128)), 9000);
  writeVnetHdr(vnet, 0, { flags: 1, gsoType: ipv6 ? 4 : 1, hdrLen: l4 + 20, gsoSize: mss, csumStart: l4, csumOffset: 16 });
  return { vnet, frame };
}

test('fuzz: version-2 streams with OFFLOAD records through the v2 decoder, the OFFLOAD validator and segmentation', (t) => {
  const seed = seedFromEnv('CK_FUZZ_SEED');
  const rand = prng(seed ^ 0x2545f491);
  const totalRecords = envInt('CK_FUZZ_V2_RECORDS', 20_000);
  const counts: Counts = new Map();
  let records = 0;
  let segments = 0;
  while (records < totalRecords) {
    const parts: Buffer[] = [];
    for (let r = randInt(rand, 1, 20); r > 0; r--, records++) {
      const x = rand();
      if (x < 0.5) {
        const { vnet, frame } = superFrame(rand);
        // Mutate the header or the frame's headers half the time: every outcome must be a named drop or valid.
        if (rand() < 0.5) for (let k = randInt(rand, 1, 3); k > 0; k--) vnet[randInt(rand, 0, 9)] = (rand() * 256) | 0;
        if (rand() < 0.3) for (let k = randInt(rand, 1, 3); k > 0; k--) frame[randInt(rand, 0, 80)] = (rand() * 256) | 0;
        parts.push(encodeOffloadV2(randInt(rand, 0, VXLAN_MAX_VNI), vnet, frame));
      } else if (x < 0.8) {
        parts.push(encodeFrameV2(randInt(rand, 0, VXLAN_MAX_VNI), Buffer.alloc(randInt(rand, 14, ETH_MAX_FRAME), 1)));
      } else if (x < 0.9) {
        parts.push(encodeControlV2(Buffer.alloc(randInt(rand, 4, 1204), 2)));
      } else {
        const junk = Buffer.alloc(4 + randInt(rand, 0, 3000), (rand() * 256) | 0);
        junk[0] = randInt(rand, 0, 255);
        junk.writeUIntBE(junk.length - 4, 1, 3);
        parts.push(junk);
      }
    }
    const stream = Buffer.concat(parts);
    const d = new RecordDecoderV2({
      frame: () => {},
      control: () => {},
      offload: (_vni, h, f) => {
        const o = parseOffload(h, f);
        if (typeof o === 'string') {
          if (!(OFFLOAD_DROPS as readonly string[]).includes(o)) throw new Error(`drop ${o}`);
          bump(counts, o);
          return;
        }
        const out: Buffer[] = [];
        const n = toFrames(o, f, out);
        if (n > MAX_SEGMENTS || n !== out.length) throw new Error(`${n} segments`);
        for (const s of out) if (o.gso && s.length > o.headers + o.mss) throw new Error(`segment of ${s.length} bytes`);
        segments += n;
        bump(counts, 'offload-valid');
      },
      drop: (r) => {
        if (!(V2_DROPS as readonly string[]).includes(r)) throw new Error(`drop ${r}`);
        bump(counts, r);
      },
    });
    for (let pos = 0; pos < stream.length;) {
      const chunk = stream.subarray(pos, pos + randInt(rand, 1, 20_000));
      pos += chunk.length;
      if (d.push(chunk) !== null) break;
    }
  }
  const summary = [...counts].map(([k, v]) => `${k}=${v}`).join(' ');
  t.diagnostic(`${records} records, ${segments} segments (seed ${seed}): ${summary}`);
  assert.ok((counts.get('offload-valid') ?? 0) > 0 && [...counts.keys()].some((k) => k.startsWith('offload-') && k !== 'offload-valid'));
});
