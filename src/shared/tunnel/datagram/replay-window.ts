// SPDX-License-Identifier: UNLICENSED
// RFC 6479 anti-replay window without bit shifting: a ring of 32-bit words, 2048 bits in all, of which
// 2016 are usable (the word being rotated in is cleared). A wide window matters because the datagram path
// reorders (multi-queue NICs, ECMP); 2016 packets is about 24 ms at 1 Gbit/s of full frames.
// check() never changes state; commit() is called only after the tag verified, so a forged datagram
// cannot move the window (that would let an attacker make later genuine datagrams look too old).

export type ReplayVerdict = null | 'zero' | 'too-old' | 'replay';

const WORDS = 64;
export const REPLAY_USABLE = WORDS * 32 - 32;

export class ReplayWindow {
  readonly #bits = new Uint32Array(WORDS);
  /** Highest counter accepted; counters start at 1 (< 2^48, exact in a double). */
  top = 0;

  check(n: number): ReplayVerdict {
    if (n === 0) return 'zero';
    if (n > this.top) return null;
    if (this.top - n >= REPLAY_USABLE) return 'too-old';
    const w = Math.floor(n / 32) % WORDS;
    return (this.#bits[w] ?? 0) & (1 << (n % 32)) ? 'replay' : null;
  }

  commit(n: number): void {
    if (n > this.top) {
      const cur = Math.floor(this.top / 32);
      const clear = Math.min(Math.floor(n / 32) - cur, WORDS);
      for (let i = 1; i <= clear; i++) this.#bits[(cur + i) % WORDS] = 0;
      this.top = n;
    }
    const w = Math.floor(n / 32) % WORDS;
    this.#bits[w] = (this.#bits[w] ?? 0) | (1 << (n % 32));
  }
}
