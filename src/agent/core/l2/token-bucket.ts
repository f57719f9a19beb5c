// SPDX-License-Identifier: UNLICENSED
// A token bucket limiting both packets per second and bits per second; time is passed in (ms). A frame
// passes only if both dimensions have enough tokens, and then costs both: a flood of small frames hits
// the pps limit, a flood of jumbo-ish frames the bps limit.
//
// Tokens are kept scaled by 1000 (per-millisecond refill of `rate` units), so with integer milliseconds
// and integer rates every operation is exact integer arithmetic: no drift however long the bucket runs,
// and a naive millisecond-by-millisecond model agrees with it exactly (see the reference-model test).

export interface TokenBucketOptions {
  /** Packets per second; 0 disables the packet limit. */
  pps: number;
  /** Bits per second of Ethernet frame bytes (header + payload, no FCS); 0 disables the bit limit. */
  bps: number;
  /** Largest packet burst; default one second's worth (at least 1). */
  burstPackets?: number;
  /** Largest burst in bytes; default one second's worth (at least one full frame). */
  burstBytes?: number;
}

/** Bound so scaled bit counts stay exact integers in a double (burst * 8 * 1000 < 2^53). */
export const MAX_BURST_BYTES = 512 * 1024 * 1024;
const MAX_FRAME_BYTES = 1522;

export class TokenBucket {
  readonly pps: number;
  readonly bps: number;
  readonly burstPackets: number;
  readonly burstBytes: number;
  readonly #pktCap: number;
  readonly #bitCap: number;
  #pkt: number;
  #bit: number;
  #last: number;

  /** Starts full at time `now`. Throws RangeError for negative or non-finite settings (config bugs). */
  constructor(options: TokenBucketOptions, now = 0) {
    const { pps, bps } = options;
    if (!(pps >= 0) || !Number.isFinite(pps)) throw new RangeError(`token bucket pps must be a finite number >= 0, got ${pps}`);
    if (!(bps >= 0) || !Number.isFinite(bps)) throw new RangeError(`token bucket bps must be a finite number >= 0, got ${bps}`);
    this.pps = pps;
    this.bps = bps;
    this.burstPackets = Math.max(1, Math.floor(options.burstPackets ?? pps));
    this.burstBytes = Math.min(MAX_BURST_BYTES, Math.max(MAX_FRAME_BYTES, Math.floor(options.burstBytes ?? bps / 8)));
    this.#pktCap = this.burstPackets * 1000;
    this.#bitCap = this.burstBytes * 8000;
    this.#pkt = this.#pktCap;
    this.#bit = this.#bitCap;
    this.#last = now;
  }

  get unlimited(): boolean {
    return this.pps === 0 && this.bps === 0;
  }

  /** Takes one frame of `bytes` if both limits allow it. A clock going backwards refills nothing. */
  take(bytes: number, now: number): boolean {
    if (this.pps === 0 && this.bps === 0) return true;
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#last = now;
      // min() keeps results exact: once the sum passes the cap the cap itself is returned.
      if (this.pps !== 0 && this.#pkt < this.#pktCap) this.#pkt = Math.min(this.#pktCap, this.#pkt + elapsed * this.pps);
      if (this.bps !== 0 && this.#bit < this.#bitCap) this.#bit = Math.min(this.#bitCap, this.#bit + elapsed * this.bps);
    }
    const bitCost = bytes * 8000;
    if (this.pps !== 0 && this.#pkt < 1000) return false;
    if (this.bps !== 0 && this.#bit < bitCost) return false;
    if (this.pps !== 0) this.#pkt -= 1000;
    if (this.bps !== 0) this.#bit -= bitCost;
    return true;
  }

  /** Whole packets and bytes currently available (for status and tests). */
  available(now: number): { packets: number; bytes: number } {
    const elapsed = Math.max(0, now - this.#last);
    const pkt = this.pps === 0 ? Infinity : Math.min(this.#pktCap, this.#pkt + elapsed * this.pps);
    const bit = this.bps === 0 ? Infinity : Math.min(this.#bitCap, this.#bit + elapsed * this.bps);
    return { packets: Math.floor(pkt / 1000), bytes: Math.floor(bit / 8000) };
  }
}
