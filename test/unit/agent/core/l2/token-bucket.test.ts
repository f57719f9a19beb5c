// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../../../../src/agent/core/l2/token-bucket.js';
import { prng as rng } from '../../../../helpers/prng.js';

test('a full bucket passes its burst, then exactly the packet rate', () => {
  const b = new TokenBucket({ pps: 100, bps: 0, burstPackets: 10 }, 0);
  let passed = 0;
  for (let i = 0; i < 50; i++) if (b.take(60, 0)) passed++;
  assert.equal(passed, 10, 'burst');
  // 10 s at 100 pps, offered 1000 pps: burst already spent, so exactly 1000 more pass.
  passed = 0;
  for (let t = 1; t <= 10_000; t++) if (b.take(60, t)) passed++;
  assert.equal(passed, 1000);
});

test('the bit limit holds independently of the packet limit', () => {
  // 1 Mbit/s, burst 1522 bytes; 1000-byte frames need 8 ms of tokens each; offered every ms.
  const b = new TokenBucket({ pps: 0, bps: 1_000_000, burstBytes: 1522 }, 0);
  let frames = 0;
  for (let t = 0; t < 10_000; t++) if (b.take(1000, t)) frames++;
  // 10 s * 1 Mbit/s = 1250 frames, plus the one the initial burst allows.
  assert.ok(frames >= 1250 && frames <= 1251, `got ${frames} frames`);
});

test('a frame passes only when both limits allow it, and a refusal costs nothing', () => {
  const b = new TokenBucket({ pps: 1000, bps: 8000, burstPackets: 5, burstBytes: 1522 }, 0);
  assert.equal(b.take(1500, 0), true);
  assert.equal(b.take(1500, 0), false, 'bytes exhausted while packets remain');
  assert.equal(b.available(0).packets, 4, 'the refused frame took no packet token');
  assert.equal(b.take(10, 0), true, 'a small frame still fits');
});

test('0 means unlimited; a clock going backwards refills nothing', () => {
  const u = new TokenBucket({ pps: 0, bps: 0 }, 0);
  for (let i = 0; i < 10_000; i++) assert.equal(u.take(1514, 0), true);
  const b = new TokenBucket({ pps: 10, bps: 0, burstPackets: 1 }, 1000);
  assert.equal(b.take(60, 1000), true);
  assert.equal(b.take(60, 0), false);
  assert.equal(b.take(60, 1099), false);
  assert.equal(b.take(60, 1100), true);
});

test('invalid settings are refused with a RangeError naming the field', () => {
  assert.throws(() => new TokenBucket({ pps: -1, bps: 0 }), /pps/);
  assert.throws(() => new TokenBucket({ pps: 0, bps: Number.NaN }), /bps/);
});

/** Naive model: adds tokens one millisecond at a time (the definition, not the shortcut). */
class NaiveBucket {
  pkt: number;
  bit: number;
  t: number;
  constructor(
    readonly pps: number,
    readonly bps: number,
    readonly capP: number,
    readonly capB: number,
    now: number,
  ) {
    this.pkt = capP * 1000;
    this.bit = capB * 8000;
    this.t = now;
  }
  take(bytes: number, now: number): boolean {
    while (this.t < now) {
      this.t++;
      if (this.pps) this.pkt = Math.min(this.capP * 1000, this.pkt + this.pps);
      if (this.bps) this.bit = Math.min(this.capB * 8000, this.bit + this.bps);
    }
    const okP = this.pps === 0 || this.pkt >= 1000;
    const okB = this.bps === 0 || this.bit >= bytes * 8000;
    if (!okP || !okB) return false;
    if (this.pps) this.pkt -= 1000;
    if (this.bps) this.bit -= bytes * 8000;
    return true;
  }
}

test('reference model: TokenBucket agrees with a millisecond-by-millisecond model', () => {
  const seeds = Array.from({ length: 60 }, (_, i) => 1000 + i);
  for (const seed of seeds) {
    const r = rng(seed);
    const pps = r() < 0.2 ? 0 : 1 + Math.floor(r() * 3000);
    const bps = r() < 0.2 ? 0 : Math.floor(r() * 20_000_000);
    const burstPackets = 1 + Math.floor(r() * 50);
    const burstBytes = 1522 + Math.floor(r() * 100_000);
    let now = Math.floor(r() * 1000);
    const real = new TokenBucket({ pps, bps, burstPackets, burstBytes }, now);
    const model = new NaiveBucket(pps, bps, real.burstPackets, real.burstBytes, now);
    for (let op = 0; op < 3000; op++) {
      const x = r();
      now += x < 0.5 ? 0 : x < 0.95 ? Math.floor(r() * 20) : Math.floor(r() * 3000);
      const bytes = 60 + Math.floor(r() * 1462);
      const got = real.take(bytes, now);
      const want = model.take(bytes, now);
      if (got !== want) assert.fail(`seed ${seed}, op ${op}: take(${bytes}, ${now}) = ${got}, model says ${want} (pps ${pps}, bps ${bps})`);
    }
  }
});
