// SPDX-License-Identifier: UNLICENSED
// The datagram AEAD in C (native/tap/aead.c) must be indistinguishable on the wire from node:crypto's: a
// peer with either opens the other's datagrams. And it must refuse what node:crypto refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadTapAddon, type TapAddon } from '../../../../src/shared/native/addon.js';
import { nativeAead, referenceSegments, sampleSuperFrame } from '../../../../src/shared/native/datagram-aead.js';
import { segmentOffload } from '../../../../src/shared/l2/tso-segment.js';
import { aead, nodeCryptoAead, segmentDatagrams, useAead, type AeadBackend } from '../../../../src/shared/tunnel/datagram/aead.js';
import { DatagramChannel } from '../../../../src/shared/tunnel/datagram/channel.js';
import { DatagramReceiver, parseHeader, seal } from '../../../../src/shared/tunnel/datagram/codec.js';
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

test('frames the native AEAD opened stay as they were while thousands more are opened (plaintext memory is never reused)', () => {
  const n = native();
  const cipher: DatagramCipher = 'AES-256-GCM';
  const chain = new EpochChain(randomBytes(32));
  const frames = Array.from({ length: 3_000 }, (_, i) => randomBytes(1 + ((i * 523) % 1_600)));
  const sealed = frames.map((f, i) => seal(cipher, chain.current, { keyId: 0, peerId: 5, counter: i + 1 }, [Buffer.of(0), f]));
  const receiver = new DatagramReceiver(cipher, 5, 0, (e) => (e === chain.current.epoch ? chain.current : null));
  useAead(n);
  try {
    const opened: Buffer[] = [];
    for (const [i, d] of sealed.entries()) {
      // A forged datagram between the good ones: refused, and its room must not leak into the next frame.
      const forged = Buffer.from(d);
      forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
      assert.equal(receiver.open(forged).ok, false);
      const r = receiver.open(d);
      assert.ok(r.ok, `datagram ${i}`);
      opened.push(r.payload);
    }
    for (const [i, p] of opened.entries()) assert.deepEqual(p, Buffer.concat([Buffer.of(0), frames[i] as Buffer]), `frame ${i} intact`);
  } finally {
    useAead(nodeCryptoAead);
  }
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
  // Super-frames cut or sealed differently (one bit) are refused too.
  const badCut: TapAddon = {
    ...addon,
    aeadSealSegments: (h, out, head, counter, kind, frame, l3, l4, headers, ipEnd, ipv6, mss) => {
      const n = addon.aeadSealSegments?.(h, out, head, counter, kind, frame, l3, l4, headers, ipEnd, ipv6, mss) ?? 0;
      out[20] = (out[20] ?? 0) ^ 1;
      return n;
    },
  };
  const r5 = nativeAead(() => badCut);
  assert.match(r5.ok ? '' : r5.reason, /segmented IPv4 super-frame differs/);
  const r4 = nativeAead(() => { throw new Error('cannot load the TAP addon'); });
  assert.match(r4.ok ? '' : r4.reason, /cannot load/);
});

test('super-frames cut and sealed in C are byte for byte segmentOffload() sealed by node:crypto: IPv4 and IPv6, a short last segment, one segment, both ciphers', () => {
  const n = native();
  assert.ok(n.sealSegments, 'this build cuts super-frames');
  for (const cipher of CIPHERS)
    for (const ipv6 of [false, true])
      for (const [payload, mss] of [
        [64_000, 1_448],
        [4_000, 1_000],
        [2_896, 1_448],
        [500, 1_448],
        [3_001, 1_000],
        [1, 9_000],
      ] as const) {
        const keys = new EpochChain(randomBytes(32)).current;
        const s = sampleSuperFrame(ipv6, payload, mss);
        const cut = { ...s.cut, mss };
        const head = Buffer.of(0x48, 0x0a, 0x0b, 0x0c, 0x00, keys.epoch);
        const out = Buffer.alloc(segmentDatagrams(cut).length);
        const count = n.sealSegments(cipher, keys, out, head, 1_000, 0, s.frame, cut);
        assert.equal(count, Math.ceil(payload / mss));
        assert.ok(out.equals(referenceSegments(cipher, keys, head, 1_000, s, mss).bytes), `${cipher} ${ipv6 ? 'IPv6' : 'IPv4'} ${payload}/${mss}`);
        n.release(keys);
      }
});

test('sealSegments refuses offsets that do not fit its frame or buffer with an error, never a crash or a write out of bounds', () => {
  const addon = loadTapAddon();
  const h = addon.aeadNew?.(0, randomBytes(32), randomBytes(12));
  assert.ok(h && addon.aeadSealSegments);
  const s = sampleSuperFrame(false, 3_000, 1_000);
  const c = s.cut;
  const head = Buffer.alloc(6);
  const good = Buffer.alloc(segmentDatagrams(c).length);
  const call = (out: Buffer, o: Partial<typeof c> = {}, counter = 1, frame: Buffer = s.frame): number => {
    const x = { ...c, ...o };
    return addon.aeadSealSegments?.(h, out, head, counter, 0, frame, x.l3, x.l4, x.headers, x.ipEnd, x.ipv6, x.mss) ?? -1;
  };
  assert.equal(call(good), 3);
  assert.throws(() => call(Buffer.alloc(good.length - 1)), /out is not the datagrams' length/);
  assert.throws(() => call(Buffer.alloc(good.length + 1)), /out is not the datagrams' length/);
  assert.throws(() => call(good, { ipEnd: s.frame.length + 1 }), /offsets do not describe/);
  assert.throws(() => call(good, { headers: c.ipEnd }), /offsets do not describe/);
  assert.throws(() => call(good, { l4: c.headers - 10 }), /offsets do not describe/);
  assert.throws(() => call(good, { mss: 0 }), /offsets do not describe/);
  assert.throws(() => call(good, { l4: c.l4 + 4 }), /IPv4 header does not end at l4/);
  assert.throws(() => call(Buffer.alloc(segmentDatagrams({ ...c, mss: 10 }).length), { mss: 10 }), /more than 256 segments/);
  assert.throws(() => call(good, {}, 0), /counter out of range/);
  assert.throws(() => call(good, {}, 2 ** 48 - 2), /counter out of range/);
  addon.aeadFree?.(h);
  assert.throws(() => call(good), /context freed/);
});

test('the channel sends a super-frame as datagrams the peer opens into the same segments as the TypeScript path, cut to the path MTU, across an epoch change', () => {
  const n = native();
  for (const backend of [n, nodeCryptoAead]) {
    useAead(backend);
    try {
      const block = randomBytes(256);
      const o = { cipher: 'AES-256-GCM', peerId: 0x0a0b0c, limits: { epochPackets: 100 } } as const;
      const agent = new DatagramChannel({ ...o, role: 'agent', keyBlock: Buffer.from(block) }, 0);
      const headend = new DatagramChannel({ ...o, role: 'headend', keyBlock: Buffer.from(block) }, 0);
      for (let now = 0; now <= 600 && agent.tx !== 'datagram'; now += 100)
        for (const d of agent.tick(now).send) {
          const r = headend.receive(d, now);
          if (r.kind === 'ping' && r.answer) agent.receive(r.answer, now);
        }
      assert.equal(agent.tx, 'datagram');
      assert.equal(agent.sealsSuperFrames, backend === n);
      // 1,448-byte segments do not fit the 1,280-byte PLPMTU the search starts at: cut smaller.
      const s = sampleSuperFrame(false, 60_000, 1_448);
      const mss = agent.maxWhole - s.cut.headers;
      assert.ok(mss < 1_448);
      const want: Buffer[] = [];
      segmentOffload(s.offload, s.frame, want, mss);
      // Twice: the second straddles the 100-datagram epoch and moves whole into the next one.
      for (const round of [1, 2]) {
        const sent: Buffer[] = [];
        const count = agent.sealSuperFrame(s.offload, s.frame, 700, (d) => sent.push(Buffer.from(d)));
        assert.equal(count, want.length);
        assert.equal(sent.length, want.length);
        for (const d of sent) assert.ok(d.length + 28 <= agent.plpmtu, `a datagram of ${d.length} bytes fits ${agent.plpmtu}`);
        // Never more datagrams under a key than its limit; in C one key seals the whole super-frame, so one epoch.
        const heads = sent.map((d) => parseHeader(d));
        if (backend === n) assert.equal(new Set(heads.map((h) => h?.epoch)).size, 1, `round ${round}: one epoch`);
        assert.ok(heads.every((h) => h !== null && h.counter >= 1 && h.counter <= 100), `round ${round}: counters within the epoch's 100`);
        const got = sent.map((d) => headend.receive(d, 700));
        assert.deepEqual(
          got.map((r) => (r.kind === 'frame' ? r.frame.toString('hex') : r.kind)),
          want.map((f) => f.toString('hex')),
          `${backend.name}, round ${round}`,
        );
      }
      assert.equal(agent.counters.framesOut, 2 * want.length);
    } finally {
      useAead(nodeCryptoAead);
    }
  }
});

test('a super-frame the C path refuses, or one without payload, is not sent as datagrams: 0, counted, and the caller carries it as frames', () => {
  const n = native();
  // A stand-in for a C path that refuses what JS validated (a bug): it throws as the addon does.
  const refusing: AeadBackend = {
    ...n,
    sealSegments: () => {
      throw new Error('aeadSealSegments: the offsets do not describe a TCP super-frame in this frame');
    },
  };
  useAead(refusing);
  try {
    const block = randomBytes(256);
    const agent = new DatagramChannel({ role: 'agent', cipher: 'AES-256-GCM', peerId: 7, keyBlock: Buffer.from(block) }, 0);
    const headend = new DatagramChannel({ role: 'headend', cipher: 'AES-256-GCM', peerId: 7, keyBlock: Buffer.from(block) }, 0);
    for (let now = 0; now <= 600 && agent.tx !== 'datagram'; now += 100)
      for (const d of agent.tick(now).send) {
        const r = headend.receive(d, now);
        if (r.kind === 'ping' && r.answer) agent.receive(r.answer, now);
      }
    const sent: Buffer[] = [];
    const s = sampleSuperFrame(false, 3_000, 1_000);
    assert.equal(agent.sealSuperFrame(s.offload, s.frame, 700, (d) => sent.push(d)), 0);
    assert.equal(agent.counters.drops['seal-segments'], 1);
    const bare = sampleSuperFrame(false, 1, 1_000);
    const empty = { ...bare.offload, ipEnd: bare.offload.headers };
    assert.equal(agent.sealSuperFrame(empty, bare.frame, 700, (d) => sent.push(d)), 0);
    assert.equal(agent.counters.drops['seal-segments'], 1, 'no payload: not even tried');
    assert.equal(sent.length, 0, 'nothing was sent');
    // Frames still go: the caller's path.
    assert.ok(agent.sealFrame(Buffer.alloc(100, 1), 700, (d) => sent.push(d)));
    assert.equal(sent.length, 1);
  } finally {
    useAead(nodeCryptoAead);
  }
});
