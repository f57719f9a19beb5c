// SPDX-License-Identifier: UNLICENSED
// The bounded egress queue of a tunnel session, the one both ends use. Each frame is written once, as a
// record, into append-only chunks; a drain hands out views of those chunks, so a frame is copied exactly
// once between the caller's (reused) buffer and the socket. A chunk region is never written again after
// it was handed out, so the socket may hold the views as long as it likes. Pure: no I/O, no timers.
//
// Both ends use it the same way (docs/tunnel-protocol.md): frames wait while the transport holds
// `holdUnsentBytes` or more, then leave in a batch that fits the room left (at least one record). What
// waits is governed by CoDel (RFC 8289, ./codel.ts): a frame is dropped at the head only while the queue
// stands above target for a whole interval, so a late event loop or a GC pause loses nothing, and a
// saturating flow inside the tunnel gets its loss signal without a standing queue. `maxFrames` bounds
// memory: a full queue drops its oldest frame, counted apart ('overflow').
import { ETH_HEADER_LEN, ETH_MAX_FRAME } from '../l2/ethernet.js';
import { AQM_DEFAULTS, CoDel, type AqmOptions, type AqmState } from './codel.js';
import { recordSize, writeRecord } from './records.js';

export interface EgressQueueOptions {
  /** Frames held at most (memory bound); a full queue drops its oldest. */
  readonly maxFrames: number;
  /** Unsent bytes in the transport at which frames wait in the queue instead. */
  readonly holdUnsentBytes: number;
  /** CoDel's target and interval; default 5 ms / 100 ms. */
  readonly aqm?: AqmOptions;
}

export interface EgressCounters {
  /** Frames drained into views, and their Ethernet bytes. */
  sentFrames: number;
  sentBytes: number;
  /** Frames dropped at the head of the full queue (the memory bound). */
  overflowDrops: number;
  /** Frames dropped at the head by CoDel under a standing queue. */
  aqmDrops: number;
}

/** The queue's AQM as status and metrics show it. */
export interface EgressAqmState extends AqmState {
  /** Sojourn of the latest frame to leave (or be dropped), ms. */
  readonly sojournMs: number;
}

/** Chunks are sized like a full TLS write: one chunk is what one turn of a busy session usually sends. */
const CHUNK_BYTES = 64 * 1024;
const GROWABLE_START = 256;
/** The largest record: a full Ethernet frame. */
const MAX_RECORD_SIZE = recordSize(ETH_MAX_FRAME);

export class EgressQueue {
  readonly options: Readonly<Required<EgressQueueOptions>>;
  readonly counters: EgressCounters = { sentFrames: 0, sentBytes: 0, overflowDrops: 0, aqmDrops: 0 };
  readonly #codel: CoDel;
  #sojournMs = 0;
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
    if (!Number.isInteger(maxFrames) || maxFrames < 1)
      throw new RangeError(`egress queue maxFrames must be an integer >= 1, got ${maxFrames}`);
    if (!(options.holdUnsentBytes > 0)) throw new RangeError(`egress queue holdUnsentBytes must be > 0, got ${options.holdUnsentBytes}`);
    const aqm = options.aqm ?? AQM_DEFAULTS;
    if (!(aqm.targetMs > 0)) throw new RangeError(`AQM target must be > 0 ms, got ${aqm.targetMs}`);
    this.options = Object.freeze({ ...options, aqm });
    this.#codel = new CoDel(aqm.intervalMs);
    // Slots grow on demand up to maxFrames: thousands of idle headend sessions hold a small ring each.
    const slots = Math.min(maxFrames, GROWABLE_START);
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

  /** CoDel's state and the latest sojourn. */
  get aqm(): EgressAqmState {
    return { ...this.#codel.state, sojournMs: this.#sojournMs };
  }

  /** True while frames wait for the transport to take its unsent bytes below the hold mark. */
  held(unsentBytes: number): boolean {
    return unsentBytes >= this.options.holdUnsentBytes;
  }

  /**
   * Queues `frame` as a record with `vni`, stamped with `now` (monotonic ms). False only for a frame no
   * record can carry (outside 14..1522 bytes; not counted): a full queue drops its oldest instead.
   */
  push(vni: number, frame: Uint8Array, now: number): boolean {
    const len = frame.length;
    if (len < ETH_HEADER_LEN || len > ETH_MAX_FRAME) return false;
    const size = recordSize(len);
    if (this.#count === this.options.maxFrames) {
      this.#dropHead();
      this.counters.overflowDrops++;
    } else if (this.#count === this.#chunk.length) this.#grow();
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
    if (this.held(unsentBytes)) return 0;
    const limit = Math.max(this.options.holdUnsentBytes - unsentBytes, MAX_RECORD_SIZE);
    const target = this.options.aqm.targetMs;
    let frames = 0;
    let taken = 0;
    let view: Buffer | null = null;
    let start = 0;
    let end = 0;
    for (;;) {
      if (this.#count === 0) {
        // The transport had room for more and nothing waited: the link went idle.
        if (limit - taken >= MAX_RECORD_SIZE) this.#codel.empty();
        break;
      }
      const h = this.#head;
      const size = this.#size[h] ?? 0;
      if (taken + size > limit) break;
      const sojourn = now - (this.#time[h] ?? now);
      this.#sojournMs = sojourn;
      // Above target counts only with more than one frame's bytes still waiting (RFC 8289's MAXPACKET).
      if (this.#codel.offer(now, sojourn >= target && this.#recordBytes - size > MAX_RECORD_SIZE)) {
        this.#dropHead();
        this.counters.aqmDrops++;
        continue;
      }
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
    const m = Math.min(n * 2, this.options.maxFrames);
    const chunk = new Array<Buffer | null>(m).fill(null);
    const off = new Int32Array(m);
    const size = new Uint16Array(m);
    const time = new Float64Array(m);
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
