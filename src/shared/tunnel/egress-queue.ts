// SPDX-License-Identifier: UNLICENSED
// Bounded tunnel send queue with head-drop. Frames are copied into preallocated slots (the caller's
// buffers are reused after the call), and when the queue is full the OLDEST frame is dropped: under
// congestion the inner TCPs then see loss quickly instead of seconds of queueing delay (TCP-over-TCP
// meltdown, see the data-plane notes). Pure: no I/O, no timers.
import { ETH_MAX_FRAME } from '../l2/ethernet.js';
import { recordSize, writeRecord } from './records.js';

export class SendQueue {
  readonly capacity: number;
  #slots: Buffer;
  #lens: Uint16Array;
  #times: Float64Array;
  #head = 0;
  #count = 0;
  #bytes = 0;
  /** Frames dropped at the head because the queue was full. */
  drops = 0;
  /** Frames dropped at the head because they waited longer than allowed (dropOlderThan). */
  expired = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`send queue capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#slots = Buffer.allocUnsafe(capacity * ETH_MAX_FRAME);
    this.#lens = new Uint16Array(capacity);
    this.#times = new Float64Array(capacity);
  }

  get length(): number {
    return this.#count;
  }

  /** Bytes of queued frames (without record overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Copies `frame` in, stamped with `now` (ms, any monotonic clock; see dropOlderThan); returns false
   * (and counts nothing) for a frame no record can carry.
   */
  push(frame: Uint8Array, now = 0): boolean {
    if (frame.length < 14 || frame.length > ETH_MAX_FRAME) return false;
    if (this.#count === this.capacity) {
      this.#bytes -= this.#lens[this.#head] ?? 0;
      this.#head = (this.#head + 1) % this.capacity;
      this.#count--;
      this.drops++;
    }
    const slot = (this.#head + this.#count) % this.capacity;
    this.#slots.set(frame, slot * ETH_MAX_FRAME);
    this.#lens[slot] = frame.length;
    this.#times[slot] = now;
    this.#count++;
    this.#bytes += frame.length;
    return true;
  }

  /**
   * Drops frames from the head that were pushed before `cutoff` and returns how many: a frame that has
   * waited longer than the tunnel's delay budget is worth less than the loss signal its drop gives.
   */
  dropOlderThan(cutoff: number): number {
    let n = 0;
    while (this.#count > 0 && (this.#times[this.#head] ?? 0) < cutoff) {
      this.#bytes -= this.#lens[this.#head] ?? 0;
      this.#head = (this.#head + 1) % this.capacity;
      this.#count--;
      n++;
    }
    this.expired += n;
    return n;
  }

  /** Bytes the next `drainInto` needs for every queued frame as a record. */
  get recordBytes(): number {
    return this.#bytes + this.#count * recordSize(0);
  }

  /**
   * Writes queued frames as records with `vni` into `dst` from `off` until the next one would pass
   * `limit`; returns the end offset and how many frames went out.
   */
  drainInto(dst: Buffer, off: number, limit: number, vni: number): { end: number; frames: number } {
    let pos = off;
    let frames = 0;
    while (this.#count > 0) {
      const len = this.#lens[this.#head] ?? 0;
      if (pos + recordSize(len) > limit) break;
      const start = this.#head * ETH_MAX_FRAME;
      pos = writeRecord(dst, pos, vni, this.#slots.subarray(start, start + len));
      this.#head = (this.#head + 1) % this.capacity;
      this.#count--;
      this.#bytes -= len;
      frames++;
    }
    return { end: pos, frames };
  }

  clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
  }
}
