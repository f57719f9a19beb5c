// SPDX-License-Identifier: UNLICENSED
// The CoDel controller (RFC 8289) both ends of the tunnel use, written per packet: the caller hands it
// each packet it takes from its queue, with whether that packet saw the queue above target, and the
// controller says drop or deliver. It drops only under a standing queue: above target continuously for
// a whole interval, then at the control law's rate (interval / sqrt(count)). A late event loop or a GC
// pause makes one burst of old packets that drains within the interval and is never dropped: that is
// delay the tunnel did not cause, not congestion it can signal.
//
// "Above target" is the caller's: the egress queue uses the packet's sojourn time (RFC 8289), the
// headend's receive side the bytes waiting unread behind the packet (it cannot see their age).
// Pure: time is an argument.

export interface AqmOptions {
  /** Acceptable standing queue (RFC 8289 TARGET), ms; default 5. */
  readonly targetMs: number;
  /** Time a queue may stay above target before the first drop (RFC 8289 INTERVAL), ms; default 100. */
  readonly intervalMs: number;
}

export const AQM_DEFAULTS: AqmOptions = Object.freeze({ targetMs: 5, intervalMs: 100 });

/** What status and metrics show of one controller. */
export interface AqmState {
  /** True while the queue has been above target for an interval and the controller drops. */
  readonly dropping: boolean;
  /** Drops in the current (or last) dropping episode: the control law's count. */
  readonly count: number;
  /** Packets dropped by the controller since it was made. */
  readonly drops: number;
}

export class CoDel {
  readonly intervalMs: number;
  /** Drops since the controller was made. */
  drops = 0;
  #firstAboveAt = 0;
  #dropping = false;
  #dropNext = 0;
  #count = 0;
  #lastCount = 0;
  /** The packet before this one was dropped in the dropping state: the next ok-to-drop one moves dropNext. */
  #afterDrop = false;
  /** The packet before this one was the drop that entered the dropping state: this one is delivered. */
  #afterEnter = false;

  constructor(intervalMs: number) {
    if (!(intervalMs > 0)) throw new RangeError(`AQM interval must be > 0 ms, got ${intervalMs}`);
    this.intervalMs = intervalMs;
  }

  get state(): AqmState {
    return { dropping: this.#dropping, count: this.#count, drops: this.drops };
  }

  /**
   * The packet taken from the queue at `now` (monotonic ms, > 0): `above` when it saw the queue above
   * target and more than one packet behind it. True: drop it and offer the next one.
   */
  offer(now: number, above: boolean): boolean {
    const ok = this.#okToDrop(now, above);
    if (this.#afterEnter) {
      // RFC 8289 hands out the packet after the entering drop whatever it saw; the state is judged next.
      this.#afterEnter = false;
      return false;
    }
    if (this.#dropping) {
      if (!ok) {
        this.#dropping = false;
        this.#afterDrop = false;
        return false;
      }
      if (this.#afterDrop) this.#dropNext = this.#controlLaw(this.#dropNext, this.#count);
      if (now >= this.#dropNext) {
        this.#count++;
        this.#afterDrop = true;
        this.drops++;
        return true;
      }
      this.#afterDrop = false;
      return false;
    }
    if (!ok) return false;
    // Entering the dropping state: start near the previous episode's rate if it ended recently.
    const delta = this.#count - this.#lastCount;
    this.#count = delta > 1 && now - this.#dropNext < 16 * this.intervalMs ? delta : 1;
    this.#lastCount = this.#count;
    this.#dropNext = this.#controlLaw(now, this.#count);
    this.#dropping = true;
    this.#afterDrop = false;
    this.#afterEnter = true;
    this.drops++;
    return true;
  }

  /** The queue ran empty: the standing queue is gone, and so is the dropping episode. */
  empty(): void {
    this.#firstAboveAt = 0;
    this.#dropping = false;
    this.#afterDrop = false;
    this.#afterEnter = false;
  }

  #okToDrop(now: number, above: boolean): boolean {
    if (!above) {
      this.#firstAboveAt = 0;
      return false;
    }
    if (this.#firstAboveAt === 0) {
      this.#firstAboveAt = now + this.intervalMs;
      return false;
    }
    return now >= this.#firstAboveAt;
  }

  #controlLaw(t: number, count: number): number {
    return t + this.intervalMs / Math.sqrt(count);
  }
}
