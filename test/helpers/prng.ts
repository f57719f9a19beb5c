// SPDX-License-Identifier: UNLICENSED
// Seeded PRNG for randomised tests: print the seed, and re-run a failure with the same seed.

/** mulberry32: small, fast, good enough for test data (not for anything secret). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in [lo, hi]. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export function randBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** The seed from env `name` (decimal) if set, else a fresh one. */
export function seedFromEnv(name: string): number {
  const v = process.env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}
