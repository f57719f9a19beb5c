// SPDX-License-Identifier: UNLICENSED
// The bounded egress queue of a tunnel session, the one both ends use. Each frame is written once, as a
// record, into append-only chunks; a drain hands out views of those chunks, so a frame is copied exactly
// once between the caller's (reused) buffer and the socket. A chunk region is never written again after
// it was handed out, so the socket may hold the views as long as it likes. Pure: no I/O, no timers.
//
// Both ends use it the same way (docs/tunnel-protocol.md): frames wait while the transport holds
// `holdUnsentBytes` or more, then leave in a batch that fits the room left (at least one record). What
// waits is scheduled by FQ-CoDel (RFC 8290), as OpenWrt's SQM does on a WAN port:
//   - each inner flow (./flow-hash.ts) has its own FIFO, served by deficit round robin with a quantum
//     of one full frame, new (sparse) flows first: a ping, an ARP, a DNS query or a TCP ACK never waits
//     behind a bulk flow's standing queue;
//   - each flow queue runs CoDel (RFC 8289, ./codel.ts): a frame is dropped at the head only while the
//     queue stands above target for a whole interval, so a late event loop or a GC pause loses nothing,
//     and a saturating flow gets its loss signal without a standing queue;
//   - `maxFrames` bounds memory: a full queue drops the head of its fattest flow, counted apart
//     ('overflow').
// Frames of one flow always leave in the order they came.
import { ETH_HEADER_LEN, ETH_MAX_FRAME } from '../l2/ethernet.js';
import { VXLAN_HEADER_LEN } from '../l2/vxlan.js';
import { AQM_DEFAULTS, CoDel, type AqmOptions, type AqmState } from './codel.js';
import { flowBucket } from './flow-hash.js';
import { dataRecordSize, writeDataRecord, type ProtocolVersion } from './framing.js';
import { recordSize } from './records.js';
import { V2_MAX_OFFLOAD, V2_MIN_OFFLOAD, VNET_HDR_LEN } from './records-v2.js';

export interface EgressQueueOptions {
  /** Frames held at most (memory bound); a full queue drops the head of its fattest flow. */
  readonly maxFrames: number;
  /** Unsent bytes in the transport at which frames wait in the queue instead. */
  readonly holdUnsentBytes: number;
  /** CoDel's target and interval; default 5 ms / 100 ms. */
  readonly aqm?: AqmOptions;
  /** Flow queues (a power of two); default 32. 1 turns flow queuing off (plain CoDel). */
  readonly flows?: number;
  /** Hash perturbation, so flows cannot be aimed at one queue from outside; default a constant. */
  readonly seed?: number;
}

export interface EgressCounters {
  /** Frames drained into views, and their Ethernet bytes. */
  sentFrames: number;
  sentBytes: number;
  /** Frames dropped at the head of the fattest flow of the full queue (the memory bound). */
  overflowDrops: number;
  /** Frames dropped at the head of a flow by CoDel under a standing queue. */
  aqmDrops: number;
}

/** The queue's AQM as status and metrics show it. */
export interface EgressAqmState extends AqmState {
  /** Sojourn of the latest frame to leave (or be dropped), ms. */
  readonly sojournMs: number;
  /** Flow queues holding frames now. */
  readonly activeFlows: number;
}

/** Chunks are sized like a full TLS write: one chunk is what one turn of a busy session usually sends. */
const CHUNK_BYTES = 64 * 1024;
/**
 * The chunk a frame gets when it comes to an empty queue after a quiet second: small enough to come from
 * Node's shared pool. Otherwise an idle session's trickle (broadcasts, ARP) would walk through a 64 KB
 * chunk page by page, and thousands of idle headend sessions would each keep most of one resident.
 */
const QUIET_CHUNK_BYTES = 2 * 1024;
const QUIET_MS = 1_000;
/** Slots and flow queues are made on demand: an empty queue is 6 KB, not 24 KB. */
const GROWABLE_START = 16;
/** The largest record: a full Ethernet frame. */
const MAX_RECORD_SIZE = recordSize(ETH_MAX_FRAME);
/** DRR quantum (RFC 8290 uses the interface MTU): one full record. */
const QUANTUM = MAX_RECORD_SIZE;
const NONE = -1;
/** What an OFFLOAD record's body holds before the super-frame: the VXLAN and virtio_net headers. */
const OFFLOAD_BODY = VXLAN_HEADER_LEN + VNET_HDR_LEN;
const DEFAULT_FLOWS = 32;
const DEFAULT_SEED = 0x5bd1e995;

interface Flow {
  head: number;
  tail: number;
  count: number;
  bytes: number;
  deficit: number;
  /** 0: in no list, 1: new flows, 2: old flows. */
  list: 0 | 1 | 2;
  readonly codel: CoDel;
}

export class EgressQueue {
  readonly options: Readonly<Required<EgressQueueOptions>>;
  readonly counters: EgressCounters = { sentFrames: 0, sentBytes: 0, overflowDrops: 0, aqmDrops: 0 };
  readonly #flows: (Flow | undefined)[];
  readonly #newFlows: number[] = [];
  readonly #oldFlows: number[] = [];
  #sojournMs = 0;
  // One slot per queued frame: where its record is, its size, when it came and the next slot of its flow.
  #chunk: (Buffer | null)[];
  #off: Int32Array;
  #size: Int32Array;
  /** Ethernet bytes of each queued frame (a super-frame's too), for the byte counters. */
  #flen: Int32Array;
  #time: Float64Array;
  #next: Int32Array;
  #free: number[] = [];
  #count = 0;
  #recordBytes = 0;
  #frameBytes = 0;
  #version: ProtocolVersion = 1;
  #tail: Buffer | null = null;
  #tailPos = 0;
  #lastPushAt = Number.NEGATIVE_INFINITY;

  constructor(options: EgressQueueOptions) {
    const maxFrames = options.maxFrames;
    if (!Number.isInteger(maxFrames) || maxFrames < 1) {
      throw new RangeError(`egress queue maxFrames must be an integer >= 1, got ${maxFrames}`);
    }
    if (!(options.holdUnsentBytes > 0)) throw new RangeError(`egress queue holdUnsentBytes must be > 0, got ${options.holdUnsentBytes}`);
    const aqm = options.aqm ?? AQM_DEFAULTS;
    if (!(aqm.targetMs > 0)) throw new RangeError(`AQM target must be > 0 ms, got ${aqm.targetMs}`);
    const flows = options.flows ?? DEFAULT_FLOWS;
    if (!Number.isInteger(flows) || flows < 1 || (flows & (flows - 1)) !== 0 || flows > 1024) {
      throw new RangeError(`egress queue flows must be a power of two in 1..1024, got ${flows}`);
    }
    this.options = Object.freeze({ ...options, aqm, flows, seed: options.seed ?? DEFAULT_SEED });
    this.#flows = new Array<Flow | undefined>(flows).fill(undefined);
    // Slots grow on demand up to maxFrames: thousands of idle headend sessions hold a small pool each.
    const slots = Math.min(maxFrames, GROWABLE_START);
    this.#chunk = new Array<Buffer | null>(slots).fill(null);
    this.#off = new Int32Array(slots);
    this.#size = new Int32Array(slots);
    this.#flen = new Int32Array(slots);
    this.#time = new Float64Array(slots);
    this.#next = new Int32Array(slots);
    for (let i = slots - 1; i >= 0; i--) this.#free.push(i);
  }

  /** Frames queued. */
  get length(): number {
    return this.#count;
  }

  /** Ethernet bytes of the queued frames (without record overhead). */
  get bytes(): number {
    return this.#frameBytes;
  }

  /** The stream grammar records are written in; fixed per connection before the first frame is queued. */
  get version(): ProtocolVersion {
    return this.#version;
  }

  set version(v: ProtocolVersion) {
    if (this.#count > 0 && v !== this.#version) throw new RangeError('the record version of a queue holding frames cannot change');
    this.#version = v;
  }

  /** Bytes the queued frames take as records on the stream. */
  get recordBytes(): number {
    return this.#recordBytes;
  }

  /** CoDel's state summed over the flow queues, and the latest sojourn. */
  get aqm(): EgressAqmState {
    let dropping = false;
    let count = 0;
    let drops = 0;
    let active = 0;
    for (const f of this.#flows) {
      if (f === undefined) continue;
      const s = f.codel.state;
      if (s.dropping) dropping = true;
      count = Math.max(count, s.count);
      drops += s.drops;
      if (f.count > 0) active++;
    }
    return { dropping, count, drops, sojournMs: this.#sojournMs, activeFlows: active };
  }

  /** True while frames wait for the transport to take its unsent bytes below the hold mark. */
  held(unsentBytes: number): boolean {
    return unsentBytes >= this.options.holdUnsentBytes;
  }

  /**
   * Queues `frame` as a record with `vni`, stamped with `now` (monotonic ms). With `vnetHdr` (version 2
   * only) it is a super-frame and leaves as one OFFLOAD record. False only for a frame no record can
   * carry (not counted): a full queue drops its fattest flow's head.
   */
  push(vni: number, frame: Uint8Array, now: number, vnetHdr?: Uint8Array): boolean {
    const len = frame.length;
    if (vnetHdr === undefined) {
      if (len < ETH_HEADER_LEN || len > ETH_MAX_FRAME) return false;
    } else if (
      this.#version !== 2 ||
      vnetHdr.length !== VNET_HDR_LEN ||
      OFFLOAD_BODY + len < V2_MIN_OFFLOAD ||
      OFFLOAD_BODY + len > V2_MAX_OFFLOAD
    ) {
      return false;
    }
    const size = dataRecordSize(this.#version, len, vnetHdr !== undefined);
    if (this.#count === this.options.maxFrames) {
      this.#dropHead(this.#fattest());
      this.counters.overflowDrops++;
    } else if (this.#free.length === 0) this.#grow();
    let tail = this.#tail;
    const quiet = this.#count === 0 && now - this.#lastPushAt >= QUIET_MS;
    this.#lastPushAt = now;
    if (tail === null || this.#tailPos + size > tail.length || (quiet && tail.length > QUIET_CHUNK_BYTES)) {
      tail = this.#tail = Buffer.allocUnsafe(Math.max(quiet ? QUIET_CHUNK_BYTES : CHUNK_BYTES, size));
      this.#tailPos = 0;
    }
    const slot = this.#free.pop() as number;
    this.#chunk[slot] = tail;
    this.#off[slot] = this.#tailPos;
    this.#size[slot] = size;
    this.#flen[slot] = len;
    this.#time[slot] = now;
    this.#next[slot] = NONE;
    this.#tailPos = writeDataRecord(this.#version, tail, this.#tailPos, vni, frame, vnetHdr);
    const id = this.options.flows === 1 ? 0 : flowBucket(frame, this.options.flows, this.options.seed);
    const f = (this.#flows[id] ??= this.#newFlow());
    if (f.tail === NONE) f.head = slot;
    else this.#next[f.tail] = slot;
    f.tail = slot;
    f.count++;
    f.bytes += size;
    if (f.list === 0) {
      f.list = 1;
      f.deficit = QUANTUM;
      this.#newFlows.push(id);
    }
    this.#count++;
    this.#recordBytes += size;
    this.#frameBytes += len;
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
      const fromNew = this.#newFlows.length > 0;
      const list = fromNew ? this.#newFlows : this.#oldFlows;
      const id = list[0];
      if (id === undefined) break;
      const f = this.#flows[id] as Flow;
      if (f.deficit <= 0) {
        f.deficit += QUANTUM;
        list.shift();
        f.list = 2;
        this.#oldFlows.push(id);
        continue;
      }
      if (f.count === 0) {
        // The flow ran dry: its standing queue and any dropping episode are over.
        f.codel.empty();
        list.shift();
        if (fromNew && this.#oldFlows.length > 0) {
          // RFC 8290 4.2: a new flow that empties goes to the old list, so a flow cannot stay "new".
          f.list = 2;
          this.#oldFlows.push(id);
        } else f.list = 0;
        continue;
      }
      const h = f.head;
      const size = this.#size[h] ?? 0;
      // The first record always fits: a super-frame is larger than the room a busy socket leaves.
      if (taken > 0 && taken + size > limit) break;
      const sojourn = now - (this.#time[h] ?? now);
      this.#sojournMs = sojourn;
      // Above target counts only with more than one frame's bytes still waiting (RFC 8289's MAXPACKET).
      if (f.codel.offer(now, sojourn >= target && this.#recordBytes - size > MAX_RECORD_SIZE)) {
        this.#dropHead(id);
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
      f.deficit -= size;
      this.counters.sentBytes += this.#flen[h] ?? 0;
      this.#unlinkHead(f, h, size);
    }
    if (view !== null) out.push(view.subarray(start, end));
    this.counters.sentFrames += frames;
    return frames;
  }

  /** Forgets every queued frame (a connection that failed); not counted as drops. */
  clear(): void {
    for (let id = 0; id < this.#flows.length; id++) while ((this.#flows[id]?.count ?? 0) > 0) this.#dropHead(id);
  }

  #newFlow(): Flow {
    return { head: NONE, tail: NONE, count: 0, bytes: 0, deficit: 0, list: 0, codel: new CoDel(this.options.aqm.intervalMs) };
  }

  /** The flow holding the most bytes; called with frames queued, so one exists. */
  #fattest(): number {
    let best = -1;
    let most = -1;
    for (let id = 0; id < this.#flows.length; id++) {
      const bytes = this.#flows[id]?.bytes ?? -1;
      if (bytes > most) {
        best = id;
        most = bytes;
      }
    }
    return best;
  }

  #dropHead(id: number): void {
    const f = this.#flows[id] as Flow;
    const h = f.head;
    this.#unlinkHead(f, h, this.#size[h] ?? 0);
  }

  #unlinkHead(f: Flow, h: number, size: number): void {
    f.head = this.#next[h] ?? NONE;
    if (f.head === NONE) f.tail = NONE;
    f.count--;
    f.bytes -= size;
    this.#chunk[h] = null;
    this.#free.push(h);
    this.#count--;
    this.#recordBytes -= size;
    this.#frameBytes -= this.#flen[h] ?? 0;
  }

  #grow(): void {
    const n = this.#chunk.length;
    const m = Math.min(n * 2, this.options.maxFrames);
    const chunk = new Array<Buffer | null>(m).fill(null);
    for (let i = 0; i < n; i++) chunk[i] = this.#chunk[i] ?? null;
    const grow = <T extends Int32Array | Float64Array>(a: T, b: T): T => {
      b.set(a);
      return b;
    };
    this.#chunk = chunk;
    this.#off = grow(this.#off, new Int32Array(m));
    this.#size = grow(this.#size, new Int32Array(m));
    this.#flen = grow(this.#flen, new Int32Array(m));
    this.#time = grow(this.#time, new Float64Array(m));
    this.#next = grow(this.#next, new Int32Array(m));
    for (let i = m - 1; i >= n; i--) this.#free.push(i);
  }
}
