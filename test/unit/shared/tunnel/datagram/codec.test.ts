// SPDX-License-Identifier: UNLICENSED
// The datagram codec and key schedule against the research vectors (which match OpenVPN's), the replay
// window against a plain set model, and the receiver under random, bit-flipped, truncated and replayed
// input: it never throws, and nothing but an authentic fresh datagram moves its state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DatagramReceiver, OVERHEAD, parseHeader, seal, nonce } from '../../../../../src/shared/tunnel/datagram/codec.js';
import { EpochChain, epochKeys, exporterContext, initialSecrets, nextEpochSecret } from '../../../../../src/shared/tunnel/datagram/keys.js';
import { REPLAY_USABLE, ReplayWindow } from '../../../../../src/shared/tunnel/datagram/replay-window.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
// /work/research/datagram/vectors.json
const V = {
  E1: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  K1: 'ebbbf838a8658beb56f2324d691351bd4c8c230fb271ada8f67de830b7ee3192',
  IV1: '568de14f8f744bfb0b721f66',
  E2: 'e35bffa31e2723bf09e8d394fa9171ca4e534553bffa1d3482de4c9b3bc639d7',
  K2: '4010426e3e169cd80289883d7f38d7eee445ead5fa21812fabebe155a4408ee5',
  IV2: '9caaa619cb6277bbb0e90c48',
  plaintext: '10010000000000010000000000000064',
  nonce: '568ce14f8f744bfa0b721f66',
  'AES-256-GCM': '480a0b0c0001000000000001f8e77c4730383331954f480205bad7db4ce0d48ba535b7af8ea551450744bb4c',
  'CHACHA20-POLY1305': '480a0b0c0001000000000001b130d2fa4f05aff94a8e08c2c623aa35718c391f8c94534cd257badfad80d406',
  exporterContextGen0: '636c3202010a0b0c00000000',
};
const PEER = 0x0a0b0c;

test('epoch keys and the next epoch secret match the vectors', () => {
  const k1 = epochKeys(hex(V.E1), 1);
  assert.equal(k1.key.toString('hex'), V.K1);
  assert.equal(k1.iv.toString('hex'), V.IV1);
  const e2 = nextEpochSecret(hex(V.E1));
  assert.equal(e2.toString('hex'), V.E2);
  const k2 = epochKeys(e2, 2);
  assert.equal(k2.key.toString('hex'), V.K2);
  assert.equal(k2.iv.toString('hex'), V.IV2);
  assert.equal(nonce(k1.iv, 1, 1).toString('hex'), V.nonce);
  assert.equal(exporterContext('AES-256-GCM', PEER, 0).toString('hex'), V.exporterContextGen0);
});

test('an epoch chain walks the same secrets and wipes the ones it leaves', () => {
  const chain = new EpochChain(hex(V.E1));
  const first = chain.current;
  assert.equal(chain.peekNext().key.toString('hex'), V.K2);
  const second = chain.advance();
  assert.equal(second.epoch, 2);
  assert.equal(second.key.toString('hex'), V.K2);
  assert.ok(
    first.key.every((b) => b === 0),
    'the retired key is wiped',
  );
});

test('initial secrets are the first 32 bytes of each direction of the key block', () => {
  const block = Buffer.alloc(256, 0).map((_, i) => i & 255);
  const s = initialSecrets(Buffer.from(block));
  assert.equal(s.a2h[0], 0);
  assert.equal(s.h2a[0], 128);
  assert.throws(() => initialSecrets(Buffer.alloc(255)), RangeError);
});

for (const cipher of ['AES-256-GCM', 'CHACHA20-POLY1305'] as const) {
  test(`${cipher}: seal gives the vector's exact bytes and the receiver opens it`, () => {
    const keys = epochKeys(hex(V.E1), 1);
    const d = seal(cipher, keys, { keyId: 0, peerId: PEER, counter: 1 }, hex(V.plaintext));
    assert.equal(d.toString('hex'), V[cipher]);
    assert.deepEqual(parseHeader(d), { keyId: 0, peerId: PEER, epoch: 1, counter: 1 });
    const rx = new DatagramReceiver(cipher, PEER, 0, (e) => (e === 1 ? keys : null));
    const r = rx.open(d);
    assert.ok(r.ok);
    assert.equal(r.payload.toString('hex'), V.plaintext);
    assert.deepEqual(rx.open(d), { ok: false, reason: 'replay' });
  });
}

test('the replay window agrees with a set model over random in- and out-of-order counters', () => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const w = new ReplayWindow();
  const seen = new Set<number>();
  let top = 0;
  for (let i = 0; i < 50_000; i++) {
    const n = Math.max(0, top + Math.floor(rnd() * 3000) - 2400);
    const verdict = w.check(n);
    const expected = n === 0 ? 'zero' : n > top ? null : top - n >= REPLAY_USABLE ? 'too-old' : seen.has(n) ? 'replay' : null;
    assert.equal(verdict, expected, `counter ${n} at top ${top}`);
    if (verdict === null) {
      w.commit(n);
      seen.add(n);
      top = Math.max(top, n);
    }
  }
});

test('counters near 2^48 survive the header and the window', () => {
  const keys = epochKeys(hex(V.E1), 1);
  const big = 2 ** 48 - 1;
  const d = seal('AES-256-GCM', keys, { keyId: 3, peerId: 0xffffff, counter: big }, Buffer.from('x'));
  assert.equal(parseHeader(d)?.counter, big);
  assert.throws(() => seal('AES-256-GCM', keys, { keyId: 0, peerId: 1, counter: 2 ** 48 }, Buffer.from('x')), RangeError);
  assert.throws(() => seal('AES-256-GCM', keys, { keyId: 0, peerId: 1, counter: 0 }, Buffer.from('x')), RangeError);
});

test('hostile input: random, bit-flipped, truncated, replayed and foreign datagrams are reasons, never throws, never move the window', () => {
  const keys = epochKeys(hex(V.E1), 1);
  const rx = new DatagramReceiver('AES-256-GCM', PEER, 0, (e) => (e === 1 ? keys : null));
  const good: Buffer[] = [];
  for (let c = 1; c <= 200; c++) good.push(seal('AES-256-GCM', keys, { keyId: 0, peerId: PEER, counter: c }, randomBytes(1 + (c % 300))));
  const accepted = new Set<number>();
  const reasons = new Map<string, number>();
  const feed = (d: Buffer): void => {
    const r = rx.open(d);
    if (r.ok) accepted.add(parseHeader(d)?.counter ?? -1);
    else reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  };
  let seed = 11;
  const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let i = 0; i < 20_000; i++) {
    const g = good[rnd(good.length)] ?? Buffer.alloc(0);
    switch (i % 5) {
      case 0:
        feed(randomBytes(rnd(1600)));
        break;
      case 1: {
        const f = Buffer.from(g);
        // Flip a bit anywhere but the first byte's opcode, which would only test the cheapest check.
        const bit = 3 + rnd(f.length * 8 - 3);
        f[bit >> 3] = (f[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        feed(f);
        break;
      }
      case 2:
        feed(g.subarray(0, rnd(g.length)));
        break;
      case 3:
        // Another key under our header: authentic-looking, not authentic.
        feed(seal('AES-256-GCM', epochKeys(randomBytes(32), 1), { keyId: 0, peerId: PEER, counter: 1 + rnd(1000) }, g.subarray(OVERHEAD)));
        break;
      default:
        feed(Buffer.concat([g, randomBytes(1 + rnd(8))]));
    }
  }
  assert.equal(accepted.size, 0, 'no hostile datagram was accepted');
  assert.equal(rx.open(good[0] ?? Buffer.alloc(0)).ok, true, 'the window did not move: counter 1 still opens');
  assert.deepEqual(rx.open(good[0] ?? Buffer.alloc(0)), { ok: false, reason: 'replay' });
  for (const g of good.slice(1)) assert.equal(rx.open(g).ok, true);
  assert.ok((reasons.get('auth') ?? 0) > 0 && (reasons.get('not-data-v2') ?? 0) > 0, JSON.stringify([...reasons]));
});

test('a datagram of the next epoch opens and the receiver keeps at most two windows', () => {
  const tx = new EpochChain(hex(V.E1));
  const recv = new EpochChain(hex(V.E1));
  let next = recv.peekNext();
  const rx = new DatagramReceiver('AES-256-GCM', PEER, 0, (e) => {
    if (e === recv.current.epoch) return recv.current;
    if (e === next.epoch) {
      recv.advance();
      next = recv.peekNext();
      return recv.current;
    }
    return null;
  });
  const d1 = seal('AES-256-GCM', tx.current, { keyId: 0, peerId: PEER, counter: 1 }, Buffer.from('a'));
  assert.equal(rx.open(d1).ok, true);
  tx.advance();
  const d2 = seal('AES-256-GCM', tx.current, { keyId: 0, peerId: PEER, counter: 1 }, Buffer.from('b'));
  const r = rx.open(d2);
  assert.ok(r.ok);
  assert.equal(r.epoch, 2);
  assert.deepEqual(rx.open(d1), { ok: false, reason: 'epoch' }, 'a retired epoch opens nothing');
});
