// SPDX-License-Identifier: UNLICENSED
// The bounded egress queue of a tunnel session, the one both ends use. Each frame is written once, as a
// record, into append-only chunks; a drain hands out views of those chunks, so a frame is copied exactly
// once between the caller's (reused) buffer and the socket. A chunk region is never written again after
// it was handed out, so the socket may hold the views as long as it likes. Pure: no I/O, no timers.
//
// Dropping beats queueing (TCP-over-TCP: a standing queue is delay for every inner flow), and the two
// ends drop where each can act (docs/tunnel-protocol.md):
//   - 'drop-oldest' (the agent): a full queue drops its OLDEST frame to take the new one, a frame that
//     waited longer than maxDelayMs is dropped at the head, and frames wait while the transport holds
//     maxUnsentBytes or more; then they leave in a batch that fits the room left (at least one record);
//   - 'refuse-newest' (the headend): a frame that would take the transport's plus the queue's unsent
//     bytes past maxUnsentBytes is refused (the caller counts it), and a drain takes everything.
import { ETH_HEADER_LEN, ETH_MAX_FRAME } from '../l2/ethernet.js';
import { MAX_RECORD, recordSize, writeRecord } from './records.js';

export type EgressOverflow = 'drop-oldest' | 'refuse-newest';

export interface EgressQueueOptions {
  readonly overflow: EgressOverflow;
  /** Frames held at most; Infinity bounds the queue by bytes only. */
  readonly maxFrames: number;
  /** Unsent bytes (the transport's and, for 'refuse-newest', the queue's) the bound allows. */
  readonly maxUnsentBytes: number;
  /** A frame that waited longer is dropped at the next drain; default Infinity ('drop-oldest' only). */
  readonly maxDelayMs?: number;
}

export interface EgressCounters {
  /** Frames drained into views, and their Ethernet bytes. */
  sentFrames: number;
  sentBytes: number;
  /** Frames dropped at the head of the full queue ('drop-oldest'). */
  drops: number;
  /** Frames dropped at the head after waiting longer than maxDelayMs. */
  expired: number;
  /** Frames refused because the unsent bytes would pass the bound ('refuse-newest'). */
  refused: number;
}

/** Chunks are sized like a full TLS write: one chunk is what one turn of a busy session usually sends. */
const CHUNK_BYTES = 64 * 1024;
const GROWABLE_START = 256;

export class EgressQueue {
  readonly options: Readonly<Required<EgressQueueOptions>>;
  readonly counters: EgressCounters = { sentFrames: 0, sentBytes: 0, drops: 0, expired: 0, refused: 0 };
  #chunk: (Buffer | null)[];
  #off: Int32Array;
  #size: Uint16Array;
  #time: Float64Array;
  #head = 0;
  #count = 0;
  #recordBytes = 0;
  #tail: Buffer | null = null;
  #tailPos = 0;

  constructor(options: EgressQueueOptions) {
    const maxFrames = options.maxFrames;
    if (maxFrames !== Infinity && (!Number.isInteger(maxFrames) || maxFrames < 1)) {
      throw new RangeError(`egress queue maxFrames must be an integer >= 1 or Infinity, got ${maxFrames}`);
    }
    if (!(options.maxUnsentBytes > 0)) throw new RangeError(`egress queue maxUnsentBytes must be > 0, got ${options.maxUnsentBytes}`);
    this.options = Object.freeze({ maxDelayMs: Infinity, ...options });
    const slots = maxFrames === Infinity ? GROWABLE_START : maxFrames;
    this.#chunk = new Array<Buffer | null>(slots).fill(null);
    this.#off = new Int32Array(slots);
    this.#size = new Uint16Array(slots);
    this.#time = new Float64Array(slots);
  }

  /** Frames queued. */
  get length(): number {
    return this.#count;
  }

  /** Ethernet bytes of the queued frames (without record overhead). */
  get bytes(): number {
    return this.#recordBytes - this.#count * recordSize(0);
  }

  /** Bytes the queued frames take as records on the stream. */
  get recordBytes(): number {
    return this.#recordBytes;
  }

  /** True while a 'drop-oldest' queue waits for the transport to take its unsent bytes below the bound. */
  held(unsentBytes: number): boolean {
    return this.options.overflow === 'drop-oldest' && unsentBytes >= this.options.maxUnsentBytes;
  }

  /**
   * Queues `frame` as a record with `vni`, stamped with `now` (monotonic ms). False for a frame no record
   * can carry (outside 14..1522 bytes; not counted) or one refused by the byte bound (counted).
   */
  push(vni: number, frame: Uint8Array, now: number, unsentBytes: number): boolean {
    const len = frame.length;
    if (len < ETH_HEADER_LEN || len > ETH_MAX_FRAME) return false;
    const size = recordSize(len);
    if (this.options.overflow === 'refuse-newest') {
      if (this.#count >= this.options.maxFrames || unsentBytes + this.#recordBytes + size > this.options.maxUnsentBytes) {
        this.counters.refused++;
        return false;
      }
      if (this.#count === this.#chunk.length) this.#grow();
    } else if (this.#count === this.options.maxFrames) {
      this.#dropHead();
      this.counters.drops++;
    }
    let tail = this.#tail;
    if (tail === null || this.#tailPos + size > tail.length) {
      tail = this.#tail = Buffer.allocUnsafe(CHUNK_BYTES);
      this.#tailPos = 0;
    }
    const slot = (this.#head + this.#count) % this.#chunk.length;
    this.#chunk[slot] = tail;
    this.#off[slot] = this.#tailPos;
    this.#size[slot] = size;
    this.#time[slot] = now;
    this.#tailPos = writeRecord(tail, this.#tailPos, vni, frame);
    this.#count++;
    this.#recordBytes += size;
    return true;
  }

  /**
   * Appends views of the records that may leave now to `out` (contiguous records of one chunk share a
   * view) and returns how many frames they carry. `unsentBytes` is what the transport still holds.
   */
  drain(now: number, unsentBytes: number, out: Buffer[]): number {
    let limit = Infinity;
    if (this.options.overflow === 'drop-oldest') {
      this.expire(now);
      if (this.held(unsentBytes)) return 0;
      limit = Math.max(this.options.maxUnsentBytes - unsentBytes, recordSize(MAX_RECORD));
    }
    let frames = 0;
    let taken = 0;
    let view: Buffer | null = null;
    let start = 0;
    let end = 0;
    while (this.#count > 0) {
      const h = this.#head;
      const size = this.#size[h] ?? 0;
      if (taken + size > limit) break;
      const chunk = this.#chunk[h] ?? null;
      const off = this.#off[h] ?? 0;
      if (chunk !== view || off !== end) {
        if (view !== null) out.push(view.subarray(start, end));
        view = chunk;
        start = off;
      }
      end = off + size;
      taken += size;
      frames++;
      this.counters.sentBytes += size - recordSize(0);
      this.#chunk[h] = null;
      this.#head = (h + 1) % this.#chunk.length;
      this.#count--;
      this.#recordBytes -= size;
    }
    if (view !== null) out.push(view.subarray(start, end));
    this.counters.sentFrames += frames;
    return frames;
  }

  /**
   * Drops the frames at the head that have waited longer than maxDelayMs at `now` and returns how many:
   * a frame past the tunnel's delay budget is worth less than the loss signal its drop gives. A drain
   * does this first.
   */
  expire(now: number): number {
    const cutoff = now - this.options.maxDelayMs;
    let n = 0;
    while (this.#count > 0 && (this.#time[this.#head] ?? 0) < cutoff) {
      this.#dropHead();
      n++;
    }
    this.counters.expired += n;
    return n;
  }

  /** Forgets every queued frame (a connection that failed); not counted as drops. */
  clear(): void {
    while (this.#count > 0) this.#dropHead();
    this.#head = 0;
  }

  #dropHead(): void {
    const h = this.#head;
    this.#recordBytes -= this.#size[h] ?? 0;
    this.#chunk[h] = null;
    this.#head = (h + 1) % this.#chunk.length;
    this.#count--;
  }

  #grow(): void {
    const n = this.#chunk.length;
    const chunk = new Array<Buffer | null>(n * 2).fill(null);
    const off = new Int32Array(n * 2);
    const size = new Uint16Array(n * 2);
    const time = new Float64Array(n * 2);
    for (let i = 0; i < this.#count; i++) {
      const j = (this.#head + i) % n;
      chunk[i] = this.#chunk[j] ?? null;
      off[i] = this.#off[j] ?? 0;
      size[i] = this.#size[j] ?? 0;
      time[i] = this.#time[j] ?? 0;
    }
    this.#chunk = chunk;
    this.#off = off;
    this.#size = size;
    this.#time = time;
    this.#head = 0;
  }
}
