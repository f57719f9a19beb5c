// SPDX-License-Identifier: UNLICENSED
// The datagram AEAD in C (native/tap/aead.c) must be indistinguishable on the wire from node:crypto's: a
// peer with either opens the other's datagrams. And it must refuse what node:crypto refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadTapAddon, type TapAddon } from '../../../../src/shared/native/addon.js';
import { nativeAead } from '../../../../src/shared/native/datagram-aead.js';
import { aead, nodeCryptoAead, useAead, type AeadBackend } from '../../../../src/shared/tunnel/datagram/aead.js';
import { DatagramReceiver, seal } from '../../../../src/shared/tunnel/datagram/codec.js';
import { EpochChain, type DatagramCipher } from '../../../../src/shared/tunnel/datagram/keys.js';

const CIPHERS: DatagramCipher[] = ['AES-256-GCM', 'CHACHA20-POLY1305'];

function native(): AeadBackend {
  const r = nativeAead();
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.backend;
}

/** Seals with one backend installed and opens with the other, through the codec the channel uses. */
function across(from: AeadBackend, to: AeadBackend, cipher: DatagramCipher): void {
  const secret = randomBytes(32);
  const tx = new EpochChain(secret);
  const rx = new EpochChain(secret);
  const receiver = new DatagramReceiver(cipher, 77, 0, (e) => (e === rx.current.epoch ? rx.current : e === rx.current.epoch + 1 ? rx.advance() : null));
  const frames = [Buffer.alloc(1), randomBytes(60), randomBytes(1_400), randomBytes(9_000)];
  const sealed: Buffer[] = [];
  useAead(from);
  try {
    for (let i = 0; i < frames.length; i++) {
      // An epoch change in the middle: the new key gets its own context.
      if (i === 2) tx.advance();
      sealed.push(seal(cipher, tx.current, { keyId: 0, peerId: 77, counter: i + 1 }, [Buffer.of(0), frames[i] ?? Buffer.alloc(0)]));
    }
    useAead(to);
    for (let i = 0; i < sealed.length; i++) {
      const r = receiver.open(sealed[i] ?? Buffer.alloc(0));
      assert.ok(r.ok, `datagram ${i} from ${from.name} opened by ${to.name}`);
      assert.deepEqual(r.payload, Buffer.concat([Buffer.of(0), frames[i] ?? Buffer.alloc(0)]));
    }
  } finally {
    useAead(nodeCryptoAead);
  }
}

test('the native AEAD checks out against node:crypto here, and both open what the other sealed, both ciphers', () => {
  const n = native();
  assert.equal(n.name, 'native');
  for (const cipher of CIPHERS) {
    across(n, nodeCryptoAead, cipher);
    across(nodeCryptoAead, n, cipher);
  }
  assert.equal(aead(), nodeCryptoAead);
});

test('the native AEAD refuses a flipped bit anywhere, another epoch or counter, and a truncated datagram', () => {
  const n = native();
  for (const cipher of CIPHERS) {
    const chain = new EpochChain(randomBytes(32));
    const keys = chain.current;
    useAead(n);
    try {
      const d = seal(cipher, keys, { keyId: 0, peerId: 5, counter: 9 }, [Buffer.of(0), randomBytes(200)]);
      const receiver = () => new DatagramReceiver(cipher, 5, 0, (e) => (e === keys.epoch ? keys : null));
      assert.ok(receiver().open(d).ok);
      for (const at of [0, 4, 6, 11, 12, 100, d.length - 17, d.length - 1]) {
        const bad = Buffer.from(d);
        bad[at] = (bad[at] ?? 0) ^ 0x20;
        const r = receiver().open(bad);
        assert.equal(r.ok, false, `bit flipped at byte ${at}`);
      }
      assert.equal(receiver().open(d.subarray(0, d.length - 1)).ok, false, 'truncated');
      // Right key, wrong counter in the nonce (the header was authentic for 9).
      assert.equal(n.open(cipher, keys, d, 10), null);
    } finally {
      useAead(nodeCryptoAead);
      chain.destroy();
    }
  }
});

test('a retired key frees its context; a key used again after that gets a new one; a freed handle is an error, not a crash', () => {
  const addon = loadTapAddon();
  const n = native();
  const chain = new EpochChain(randomBytes(32));
  const keys = chain.current;
  const out = () => Buffer.alloc(12 + 1 + 16);
  n.seal('AES-256-GCM', keys, out(), 1, [Buffer.of(1)]);
  n.release(keys);
  n.seal('AES-256-GCM', keys, out(), 2, [Buffer.of(1)]);
  n.release(keys);
  const h = addon.aeadNew?.(0, randomBytes(32), randomBytes(12));
  assert.ok(h);
  addon.aeadFree?.(h);
  assert.throws(() => addon.aeadSeal?.(h, out(), 1, 1, Buffer.of(1)), /context freed/);
  assert.throws(() => addon.aeadNew?.(0, randomBytes(16), randomBytes(12)), /32-byte/);
  assert.throws(() => addon.aeadSeal?.(addon.aeadNew?.(0, randomBytes(32), randomBytes(12)) as never, Buffer.alloc(20), 1, 1, Buffer.of(1)), /header \+ parts \+ tag/);
});

test('an addon whose AEAD disagrees with node:crypto, or has none, or throws, is not used, and says why', () => {
  const addon = loadTapAddon();
  // A stand-in for an addon built against a different OpenSSL: its seal is off by one bit.
  const wrong: TapAddon = {
    ...addon,
    aeadSeal: (h, out, epoch, counter, a, b) => {
      const ok = b === undefined ? addon.aeadSeal?.(h, out, epoch, counter, a) : addon.aeadSeal?.(h, out, epoch, counter, a, b);
      out[out.length - 1] = (out[out.length - 1] ?? 0) ^ 1;
      return ok ?? false;
    },
  };
  const r1 = nativeAead(() => wrong);
  assert.equal(r1.ok, false);
  assert.match(r1.ok ? '' : r1.reason, /AES-256-GCM: the addon's datagram differs/);
  const { aeadNew: _n, ...without } = addon;
  const r2 = nativeAead(() => without as TapAddon);
  assert.match(r2.ok ? '' : r2.reason, /no AEAD/);
  const noOpenssl: TapAddon = { ...addon, aeadNew: () => { throw new Error('aeadNew: the loading node does not export OpenSSL'); } };
  const r3 = nativeAead(() => noOpenssl);
  assert.match(r3.ok ? '' : r3.reason, /does not export OpenSSL/);
  const r4 = nativeAead(() => { throw new Error('cannot load the TAP addon'); });
  assert.match(r4.ok ? '' : r4.reason, /cannot load/);
});
