// SPDX-License-Identifier: UNLICENSED
// Small frames sealed in one task share BUNDLE datagrams toward a peer that said `dg-bundle`: in order,
// never larger than one datagram at the path MTU, a frame that does not fit a bundle flushing it first;
// none toward a peer that did not say it; an authentic bundle of the wrong layout dropped whole and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BUNDLE_FRAME_MAX, DatagramChannel, KIND_BUNDLE, type Received } from '../../../../../src/shared/tunnel/datagram/channel.js';
import { seal } from '../../../../../src/shared/tunnel/datagram/codec.js';
import { EpochChain, initialSecrets } from '../../../../../src/shared/tunnel/datagram/keys.js';

const PEER_ID = 0x0a0b0c;

/** An Ethernet frame of `size` bytes whose payload starts with `tag`. */
function frame(tag: string, size = 64): Buffer {
  const f = Buffer.alloc(size, 0x2e);
  f.fill(0xff, 0, 6);
  Buffer.from('020000000001', 'hex').copy(f, 6);
  f.writeUInt16BE(0x88b6, 12);
  Buffer.from(tag).copy(f, 14);
  return f;
}

/** Both ends on datagrams (the agent's probe answered); `bundles` says what each told the other. */
function pair(bundles = { agent: true, headend: true }, block = randomBytes(256)) {
  const o = { cipher: 'AES-256-GCM', peerId: PEER_ID } as const;
  const agent = new DatagramChannel(
    { ...o, role: 'agent', keyBlock: Buffer.from(block), peerSplits: true, peerBundles: bundles.headend },
    0,
  );
  const headend = new DatagramChannel(
    { ...o, role: 'headend', keyBlock: Buffer.from(block), peerSplits: true, peerBundles: bundles.agent },
    0,
  );
  for (const d of agent.tick(0).send) {
    const r = headend.receive(d, 0);
    if (r.kind === 'ping' && r.answer) agent.receive(r.answer, 0);
  }
  assert.equal(agent.tx, 'datagram');
  return { agent, headend, block };
}

/** What `to` makes of `datagrams`, as the frames it would hand to its session, in order. */
function open(to: DatagramChannel, datagrams: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const d of datagrams) {
    const r: Received = to.receive(d, 10);
    if (r.kind === 'frame') out.push(Buffer.from(r.frame));
    else if (r.kind === 'frames') for (const f of r.frames) out.push(Buffer.from(f));
    else assert.fail(`unexpected ${r.kind}${r.kind === 'drop' ? ` (${r.reason})` : ''}`);
  }
  return out;
}

test('small frames of one task leave together at the flush, in order, as few datagrams; the peer opens every frame', () => {
  const { agent, headend } = pair();
  const sent: Buffer[] = [];
  const frames = Array.from({ length: 40 }, (_, i) => frame(`f${i}`, 64 + i));
  const probes = headend.counters.datagramsIn;
  for (const f of frames) assert.ok(agent.sealFrame(f, 5, (d) => sent.push(d)));
  // Each frame costs 2 + its length; a bundle holds what fits one datagram at the path (1,280 bytes at first).
  let bundles = 1;
  for (let i = 0, used = 0; i < frames.length; i++) {
    const cost = 2 + (frames[i] as Buffer).length;
    if (used + cost > agent.maxWhole) [bundles, used] = [bundles + 1, 0];
    used += cost;
  }
  assert.ok(bundles >= 3);
  assert.ok(agent.bundlePending, 'the last frames wait for the end of the task');
  assert.equal(sent.length, bundles - 1, 'full bundles leave as they fill');
  agent.flushBundle((d) => sent.push(d));
  assert.equal(agent.bundlePending, false);
  assert.equal(sent.length, bundles, `40 frames in ${bundles} datagrams`);
  for (const d of sent) assert.ok(d.length + 28 <= agent.plpmtu, `a bundle fits the path (${d.length + 28} bytes on the wire)`);
  assert.deepEqual(open(headend, sent), frames);
  assert.equal(agent.counters.bundles, bundles);
  assert.equal(agent.counters.framesOut, 40);
  assert.equal(headend.counters.framesIn, 40);
  assert.equal(headend.counters.datagramsIn - probes, bundles);
});

test('a frame that does not go in a bundle flushes it first: order across sizes is kept', () => {
  const { agent, headend } = pair();
  const sent: Buffer[] = [];
  const send = (d: Buffer): void => void sent.push(d);
  const seq = [frame('a'), frame('b'), frame('big', BUNDLE_FRAME_MAX + 1), frame('c'), frame('huge', 1514), frame('d'), frame('e')];
  for (const f of seq) assert.ok(agent.sealFrame(f, 5, send));
  agent.flushBundle(send);
  // [a b] bundle, big, c alone (a plain frame), huge as a HEAD/TAIL pair, [d e] bundle.
  const kinds: string[] = [];
  const got: Buffer[] = [];
  for (const d of sent) {
    const r = headend.receive(d, 10);
    kinds.push(r.kind);
    if (r.kind === 'frame') got.push(Buffer.from(r.frame));
    if (r.kind === 'frames') got.push(...r.frames.map((f) => Buffer.from(f)));
  }
  assert.deepEqual(kinds, ['frames', 'frame', 'frame', 'half', 'frame', 'frames']);
  assert.deepEqual(got, seq);
  assert.equal(agent.counters.bundles, 2);
});

test('toward a peer that did not say dg-bundle every frame is a datagram of its own, at once', () => {
  const { agent, headend } = pair({ agent: true, headend: false });
  const sent: Buffer[] = [];
  const frames = Array.from({ length: 5 }, (_, i) => frame(`f${i}`));
  for (const f of frames) agent.sealFrame(f, 5, (d) => sent.push(d));
  assert.equal(agent.bundlePending, false);
  assert.equal(sent.length, 5);
  assert.deepEqual(
    sent.map((d) => headend.receive(d, 10).kind),
    ['frame', 'frame', 'frame', 'frame', 'frame'],
  );
  assert.equal(agent.counters.bundles, 0);
});

test('a lone small frame at the flush leaves as a plain FRAME datagram; a flush after destroy sends nothing', () => {
  const { agent, headend } = pair();
  const sent: Buffer[] = [];
  agent.sealFrame(frame('alone'), 5, (d) => sent.push(d));
  assert.equal(sent.length, 0);
  agent.flushBundle((d) => sent.push(d));
  assert.equal(sent.length, 1);
  const r = headend.receive(sent[0] as Buffer, 10);
  assert.ok(r.kind === 'frame' && r.frame.equals(frame('alone')));
  assert.equal(agent.counters.bundles, 0);

  agent.sealFrame(frame('late'), 6, (d) => sent.push(d));
  agent.destroy();
  agent.flushBundle((d) => sent.push(d));
  assert.equal(sent.length, 1, 'the keys are gone with the session: nothing sealed');
  assert.equal(agent.bundlePending, false);
});

test('an authentic BUNDLE of the wrong layout is dropped whole and counted; the next datagram opens', () => {
  const { headend, block } = pair();
  // The agent's direction, sealed by hand: what a buggy peer could send.
  const chain = new EpochChain(initialSecrets(block).a2h);
  let counter = 1_000;
  const sealed = (payload: Buffer): Buffer =>
    seal('AES-256-GCM', chain.current, { keyId: 0, peerId: PEER_ID, counter: counter++ }, [Buffer.of(KIND_BUNDLE), payload]);
  const len = (n: number): Buffer => Buffer.of(n >>> 8, n & 255);
  const f = frame('x');
  const bad: [string, Buffer][] = [
    ['one frame only', Buffer.concat([len(f.length), f])],
    ['a length past the end', Buffer.concat([len(f.length), f, len(f.length + 1), f])],
    ['a frame shorter than an Ethernet header', Buffer.concat([len(f.length), f, len(13), f.subarray(0, 13)])],
    ['a dangling length byte', Buffer.concat([len(f.length), f, len(f.length), f, Buffer.of(0)])],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [what, payload] of bad) {
    const r = headend.receive(sealed(payload), 10);
    assert.ok(r.kind === 'drop' && r.reason === 'bundle-layout', what);
  }
  assert.equal(headend.counters.drops['bundle-layout'], bad.length);
  assert.equal(headend.counters.framesIn, 0);
  const good = headend.receive(sealed(Buffer.concat([len(f.length), f, len(f.length), f])), 10);
  assert.ok(good.kind === 'frames' && good.frames.length === 2 && good.frames.every((g) => g.equals(f)));
});

test('2,000 random authentic BUNDLE payloads: never a throw; either frames that account for every byte, or dropped whole', () => {
  const { headend, block } = pair();
  const chain = new EpochChain(initialSecrets(block).a2h);
  let counter = 5_000;
  let opened = 0;
  for (let i = 0; i < 2_000; i++) {
    // Half random bytes, half well-formed bundles with one length mutated.
    let payload: Buffer;
    if (i % 2 === 0) payload = randomBytes(i % 300);
    else {
      const parts = Array.from({ length: 2 + (i % 5) }, (_, k) => {
        const f = randomBytes(14 + ((i * 7 + k * 13) % 200));
        return Buffer.concat([Buffer.of(f.length >>> 8, f.length & 255), f]);
      });
      payload = Buffer.concat(parts);
      payload[(i * 31) % payload.length] = (i * 17) & 255;
    }
    const d = seal('AES-256-GCM', chain.current, { keyId: 0, peerId: PEER_ID, counter: counter++ }, [Buffer.of(KIND_BUNDLE), payload]);
    const r = headend.receive(d, 10);
    if (r.kind === 'frames') {
      opened++;
      assert.ok(r.frames.length >= 2 && r.frames.every((f) => f.length >= 14));
      assert.equal(
        r.frames.reduce((n, f) => n + 2 + f.length, 0),
        payload.length,
      );
    } else assert.ok(r.kind === 'drop' && r.reason === 'bundle-layout', `${r.kind}`);
  }
  assert.ok(opened > 0, 'some mutated bundles were still well-formed');
});
