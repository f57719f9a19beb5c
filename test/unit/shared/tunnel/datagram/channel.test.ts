// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DatagramChannel } from '../../../../../src/shared/tunnel/datagram/channel.js';

/** The one datagram a small frame leaves as. */
function seal1(c: DatagramChannel, f: Buffer, now: number): Buffer {
  const out: Buffer[] = [];
  assert.ok(c.sealFrame(f, now, (d) => out.push(d)));
  assert.equal(out.length, 1);
  return out[0] as Buffer;
}

const frame = (tag: string): Buffer =>
  Buffer.concat([Buffer.from('ffffffffffff020000000001', 'hex'), Buffer.from([0x08, 0x00]), Buffer.from(tag)]);

function pair(block = randomBytes(256)): { agent: DatagramChannel; headend: DatagramChannel } {
  return {
    agent: new DatagramChannel({ role: 'agent', cipher: 'AES-256-GCM', peerId: 0x0a0b0c, keyBlock: Buffer.from(block) }, 0),
    headend: new DatagramChannel({ role: 'headend', cipher: 'AES-256-GCM', peerId: 0x0a0b0c, keyBlock: Buffer.from(block) }, 0),
  };
}

/** Runs both sides' ticks from `from` to `to` ms, delivering datagrams (and answers) unless a direction is cut. */
function run(
  a: DatagramChannel,
  h: DatagramChannel,
  from: number,
  to: number,
  cut = { up: false, down: false },
): { agent: number; headend: number } {
  const sent = { agent: 0, headend: 0 };
  for (let now = from; now <= to; now += 100) {
    for (const d of a.tick(now).send) {
      sent.agent++;
      if (cut.up) continue;
      const r = h.receive(d, now);
      if (r.kind === 'ping' && r.answer && !cut.down) a.receive(r.answer, now);
    }
    for (const d of h.tick(now).send) {
      sent.headend++;
      if (cut.down) continue;
      const r = a.receive(d, now);
      if (r.kind === 'ping' && r.answer && !cut.up) h.receive(r.answer, now);
    }
  }
  return sent;
}

test('the agent probes at once; an answered probe moves both sides to datagrams; frames open only at the other end', () => {
  const { agent, headend } = pair();
  assert.equal(agent.tx, 'tls');
  run(agent, headend, 0, 600);
  assert.equal(agent.tx, 'datagram');
  assert.equal(headend.tx, 'datagram', "the headend proved its own direction with a probe of its own after the agent's");
  const d = seal1(agent, frame('hello'), 700);
  const r = headend.receive(d, 700);
  assert.equal(r.kind, 'frame');
  assert.ok(r.kind === 'frame' && r.frame.includes(Buffer.from('hello')));
  // The sender cannot open its own datagrams: each direction has its own key.
  assert.equal(agent.receive(seal1(agent, frame('x'), 710), 710).kind, 'drop');
});

test('an unanswered probe leaves frames in TLS; the agent probes again after 2 s, doubling up to the cap', () => {
  const { agent, headend } = pair();
  const sentAt: number[] = [];
  for (let now = 0; now <= 20_000; now += 100) if (agent.tick(now).send.length > 0) sentAt.push(now);
  void headend;
  assert.equal(agent.tx, 'tls');
  assert.equal(agent.reason, 'probe-unanswered');
  // Probes at 0..750 ms, then again from 1 s + 2 s, then 4 s later, then 8 s later.
  const starts = sentAt.filter((t, i) => i === 0 || t - (sentAt[i - 1] ?? 0) > 300);
  assert.deepEqual(starts, [0, 3_000, 8_000, 17_000]);
});

test('datagrams that go dark while frames flow: TLS within about 1.5 s; unblocked, the agent comes back', () => {
  const { agent, headend } = pair();
  run(agent, headend, 0, 600);
  assert.equal(agent.tx, 'datagram');
  let darkAt = -1;
  for (let now = 700; now <= 4_000; now += 100) {
    seal1(agent, frame('busy'), now); // frames flow: the monitor pings every 500 ms
    agent.tick(now); // its pings are lost: nothing delivered
    if ((agent.tx as string) === 'tls' && darkAt < 0) darkAt = now;
  }
  assert.ok(darkAt > 700 && darkAt <= 700 + 1_600, `dark after ${darkAt - 700} ms`);
  assert.equal(agent.reason, 'dark');
  run(agent, headend, 4_100, 8_000);
  assert.equal(agent.tx, 'datagram');
});

test('the idle agent keeps its NAT mapping: one PING every 15 s, none from the headend', () => {
  const { agent, headend } = pair();
  run(agent, headend, 0, 600);
  run(agent, headend, 700, 2_900); // the probe's activity window ends
  const sent = run(agent, headend, 3_000, 62_900);
  assert.deepEqual(sent, { agent: 4, headend: 0 });
  assert.equal(agent.tx, 'datagram');
});

test('hostile input changes nothing: noise, truncation, replay, a flipped bit and a stranger peer id are dropped by reason', () => {
  const { agent, headend } = pair();
  run(agent, headend, 0, 600);
  const real = seal1(agent, frame('real'), 700);
  assert.equal(headend.receive(real, 700).kind, 'frame');
  const last = headend.lastAuthenticAt;
  const flipped = Buffer.from(real);
  flipped[6]! ^= 0x80; // a counter the window has not seen: only the tag can refuse it
  const stranger = Buffer.from(seal1(agent, frame('s'), 701));
  stranger[3] = (stranger[3]! + 1) & 255;
  const noise = randomBytes(100);
  noise[0] = 0;
  const reasons = [noise, randomBytes(10), real, flipped, stranger].map((d) => headend.receive(d, 800));
  assert.deepEqual(
    reasons.map((r) => (r.kind === 'drop' ? r.reason : r.kind)),
    ['not-data-v2', 'not-data-v2', 'replay', 'auth', 'peer'],
  );
  assert.equal(headend.lastAuthenticAt, last, 'no drop counts as life on the path');
  assert.equal(headend.tx, 'datagram');
});

test('keys of another TLS session open nothing; a destroyed channel opens nothing', () => {
  const a = pair();
  const b = pair();
  const d = seal1(a.agent, frame('x'), 0);
  assert.deepEqual(b.headend.receive(d, 0), { kind: 'drop', reason: 'auth' });
  a.headend.destroy();
  assert.deepEqual(a.headend.receive(d, 0), { kind: 'drop', reason: 'closed' });
});

test("the headend follows the device's word: when the device's data leaves datagrams, the headend's does too", () => {
  const { agent, headend } = pair();
  run(agent, headend, 0, 600);
  assert.equal(headend.tx, 'datagram');
  headend.peerOnTls();
  assert.equal(headend.tx, 'tls');
  assert.equal(headend.reason, 'peer-on-tls');
  run(agent, headend, 700, 20_000);
  assert.equal(headend.tx, 'datagram', "the device's next datagram starts a new probe that succeeds");
});

/** Both sides up on datagrams, delivering only datagrams whose outer IPv4 packet fits `mtu`. */
function runMtu(
  a: DatagramChannel,
  h: DatagramChannel,
  from: number,
  to: number,
  mtu: number,
  lose = (_d: Buffer): boolean => false,
): void {
  const fits = (d: Buffer): boolean => d.length + 28 <= mtu && !lose(d);
  for (let now = from; now <= to; now += 100) {
    for (const d of a.tick(now).send) {
      if (!fits(d)) continue;
      const r = h.receive(d, now);
      if (r.kind === 'ping' && r.answer && fits(r.answer)) a.receive(r.answer, now);
    }
    for (const d of h.tick(now).send) {
      if (!fits(d)) continue;
      const r = a.receive(d, now);
      if (r.kind === 'ping' && r.answer && fits(r.answer)) h.receive(r.answer, now);
    }
  }
}

function splitPair(block = randomBytes(256)): { agent: DatagramChannel; headend: DatagramChannel } {
  const o = { cipher: 'AES-256-GCM', peerId: 0x0a0b0c, peerSplits: true } as const;
  return {
    agent: new DatagramChannel({ ...o, role: 'agent', keyBlock: Buffer.from(block) }, 0),
    headend: new DatagramChannel({ ...o, role: 'headend', keyBlock: Buffer.from(block) }, 0),
  };
}

test('path MTU: each side starts at 1280 and finds the largest candidate its path carries; lost probes never darken the path', () => {
  for (const mtu of [1500, 1492, 1400, 1300]) {
    const { agent, headend } = splitPair();
    assert.equal(agent.plpmtu, 1280);
    runMtu(agent, headend, 0, 400, mtu);
    assert.equal(agent.tx, 'datagram');
    runMtu(agent, headend, 500, 6_000, mtu);
    assert.equal(agent.plpmtu, mtu, `agent at path MTU ${mtu}`);
    assert.equal(headend.plpmtu, mtu, `headend at path MTU ${mtu}`);
    assert.equal(agent.tx, 'datagram', 'the unanswered larger probes did not count as a dark path');
    assert.equal(headend.tx, 'datagram');
    assert.equal(agent.maxWhole, mtu - 28 - 29);
  }
});

test('a frame above one datagram leaves as HEAD and TAIL within the path MTU and is rebuilt in either order', () => {
  const { agent, headend } = splitPair();
  runMtu(agent, headend, 0, 5_000, 1400);
  const big = randomBytes(1514);
  for (const order of ['in-order', 'reversed']) {
    const out: Buffer[] = [];
    assert.ok(agent.sealFrame(big, 5_100, (d) => out.push(d)));
    assert.equal(out.length, 2, 'two datagrams');
    for (const d of out) assert.ok(d.length + 28 <= 1400, `${d.length + 28} bytes on the wire`);
    if (order === 'reversed') out.reverse();
    assert.equal(headend.receive(out[0]!, 5_100).kind, 'half');
    const r = headend.receive(out[1]!, 5_100);
    assert.ok(r.kind === 'frame' && r.frame.equals(big), order);
  }
  assert.equal(agent.counters.splits, 2);
  // One that fits goes whole.
  const out: Buffer[] = [];
  agent.sealFrame(randomBytes(1300), 5_200, (d) => out.push(d));
  assert.equal(out.length, 1);
  // One larger than two datagrams is refused (the caller sends it in TLS).
  assert.equal(
    agent.sealFrame(randomBytes(3_000), 5_300, () => assert.fail('nothing sent')),
    false,
  );
});

test('a lost half costs its frame only: held halves time out in 200 ms and are bounded in number', () => {
  const { agent, headend } = splitPair();
  runMtu(agent, headend, 0, 600, 1280);
  const halves: Buffer[] = [];
  for (let i = 0; i < 20; i++) agent.sealFrame(randomBytes(1514), 700, (d) => halves.push(d));
  // Only the HEADs arrive.
  for (let i = 0; i < halves.length; i += 2) assert.equal(headend.receive(halves[i]!, 700).kind, 'half');
  assert.equal(headend.counters.drops['half-evicted'], 12, '8 held, the oldest 12 evicted');
  const next: Buffer[] = [];
  agent.sealFrame(randomBytes(1514), 1_000, (d) => next.push(d));
  headend.receive(next[0]!, 1_000);
  assert.equal(headend.counters.drops['half-timeout'], 8, 'the 8 held ones expired');
  // A TAIL whose HEAD is gone is held, then expires: no frame is ever made from a wrong pair.
  assert.equal(headend.receive(halves[1]!, 1_000).kind, 'half');
  const r = headend.receive(next[1]!, 1_000);
  assert.equal(r.kind, 'frame');
});

test('toward a peer that does not rebuild pairs a large frame leaves whole, as older versions sent it', () => {
  const block = randomBytes(256);
  const agent = new DatagramChannel({ role: 'agent', cipher: 'AES-256-GCM', peerId: 9, keyBlock: Buffer.from(block) }, 0);
  const headend = new DatagramChannel({ role: 'headend', cipher: 'AES-256-GCM', peerId: 9, keyBlock: Buffer.from(block) }, 0);
  const out: Buffer[] = [];
  assert.ok(agent.sealFrame(randomBytes(1514), 10, (d) => out.push(d)));
  assert.equal(out.length, 1);
  assert.equal(headend.receive(out[0]!, 10).kind, 'frame');
});

test('path MTU black hole: a path that shrinks after the search is found while frames flow, and searched again', () => {
  const { agent, headend } = splitPair();
  runMtu(agent, headend, 0, 6_000, 1500);
  assert.equal(agent.plpmtu, 1500);
  // Frames flowing every 100 ms: on a path that still carries 1,500 bytes the confirmations are answered.
  const flow = (from: number, to: number, mtu: number, lose?: (d: Buffer) => boolean): void => {
    for (let now = from; now <= to; now += 100) {
      agent.sealFrame(frame('data'), now, (d) => headend.receive(d, now));
      runMtu(agent, headend, now, now, mtu, lose);
    }
  };
  flow(6_100, 20_000, 1500);
  assert.equal(agent.plpmtu, 1500);
  assert.equal(agent.blackHoles, 0, 'no false alarm on a path that did not change');
  // One confirmation lost (random loss happens): not a black hole.
  let lost = 0;
  flow(20_100, 40_000, 1500, (d) => d.length + 28 === 1500 && lost++ === 0);
  assert.equal(lost > 1, true, 'confirmations kept coming');
  assert.equal(agent.blackHoles, 0, 'one lost confirmation is not a black hole');
  assert.equal(agent.plpmtu, 1500);
  // The route changes: 1,400 bytes at most from now on, and no ICMP (DF, and ICMP is not trusted).
  flow(40_100, 55_000, 1400);
  assert.equal(agent.blackHoles, 1);
  assert.equal(agent.plpmtu, 1400, 'the new path MTU found by the search that followed');
  assert.equal(agent.tx, 'datagram', 'the path never went dark: small datagrams flowed all along');
  // A full-size frame crosses now, as a pair within 1,400 bytes.
  const big = randomBytes(1514);
  const out: Buffer[] = [];
  assert.ok(agent.sealFrame(big, 55_100, (d) => out.push(d)));
  assert.ok(out.every((d) => d.length + 28 <= 1400));
  const got = out.map((d) => headend.receive(d, 55_100)).at(-1);
  assert.ok(got?.kind === 'frame' && got.frame.equals(big));
});

test('keys that have carried all they may: data moves to TLS for good and nothing more is sealed (no crash)', () => {
  const block = randomBytes(256);
  const o = { cipher: 'AES-256-GCM', peerId: 0x0a0b0c, limits: { epochPackets: 50, lastEpoch: 3 } } as const;
  const agent = new DatagramChannel({ ...o, role: 'agent', keyBlock: Buffer.from(block) }, 0);
  const headend = new DatagramChannel({ ...o, role: 'headend', keyBlock: Buffer.from(block) }, 0);
  run(agent, headend, 0, 600);
  assert.equal(agent.tx, 'datagram');
  let opened = 0;
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const ok = agent.sealFrame(frame(`f${i}`), 700 + i, (d) => {
      if (headend.receive(d, 700 + i).kind === 'frame') opened++;
    });
    if (!ok) refused++;
  }
  assert.equal(agent.tx, 'tls');
  assert.equal(agent.reason, 'keys-spent');
  assert.ok(
    opened > 0 && refused > 0 && opened + refused === 200,
    `${opened} opened (every frame sealed opened: the receiver followed the epochs), ${refused} left for TLS`,
  );
  const before = agent.counters.datagramsOut;
  const sent = run(agent, headend, 800, 20_000);
  assert.equal(sent.agent, 0, 'no more PINGs either');
  assert.equal(agent.counters.datagramsOut, before);
  assert.equal(agent.tx, 'tls', 'an answered PING of the peer cannot bring it back');
});
