// SPDX-License-Identifier: UNLICENSED
// The agent's further datagram lanes (docs/datagram.md, "Lanes"), seen from the event loop: each lane is a
// worker thread with its own UDP socket and channel (datagram-lane-worker.ts), so its sealing, opening and
// system calls run on a core of their own. The loop keeps the TAP and the Layer-2 policy; it hands a lane
// the frames of the flows that hash to it, at most one message per task, and takes back the frames the
// lane received the same way (LaneOutbox). Messages carry one buffer each, transferred, not copied again,
// and the buffers go back the other way once read (BufferShuttle): a fresh buffer per message is memory
// outside the heap, which V8 answers with full collections (docs/performance.md, "opened in place").
// Each direction is a queue the tunnel did not have before, so it is managed as the egress queue is
// (shared/tunnel/codel.ts): the side that takes frames from it runs CoDel on their sojourn (each buffer
// says when its first frame went in) and drops only under a standing queue; a cap in bytes is there for
// memory alone.
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Offload } from '../../shared/l2/tso-segment.js';
import { VNET_HDR_LEN, writeVnetHdr } from '../../shared/l2/tso-segment.js';
import type { LogFields, Logger } from '../../shared/log.js';
import { AQM_DEFAULTS, CoDel, type AqmOptions } from '../../shared/tunnel/codel.js';
import type { ChannelTiming } from '../../shared/tunnel/datagram/channel.js';

/** The headend's datagram port and what it offered: the same for every lane of a session. */
interface LaneChannel {
  host: string;
  port: number;
  splits: boolean;
  bundles: boolean;
  localAddress?: string;
  sendThread?: boolean;
  timing?: Partial<ChannelTiming>;
}

/** What a lane worker is started with (its workerData's `ckLane`). */
export interface LaneInit extends LaneChannel {
  peerId: number;
  keyBlock: Uint8Array;
  aqm: AqmOptions;
  /** One Int32 each: the bytes of tx messages the worker has taken and of rx messages the loop has (wrapping). */
  txTaken: SharedArrayBuffer;
  rxTaken: SharedArrayBuffer;
}

/** A buffer of frames: `at` (laneNow()) is when its first frame went in. */
export interface LaneBuffer {
  buf: ArrayBuffer;
  used: number;
  at: number;
  free: ArrayBuffer[];
}
export type ToLane = ({ t: 'tx' } & LaneBuffer) | { t: 'free'; free: ArrayBuffer[] } | { t: 'close' };
export type FromLane =
  | ({ t: 'rx' } & LaneBuffer)
  | { t: 'free'; free: ArrayBuffer[] }
  | { t: 'state'; up: boolean }
  | { t: 'stats'; stats: WorkerStats }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields: LogFields };

export interface LaneStatus {
  peerId: number;
  /** The worker runs. */
  alive: boolean;
  /** The lane's own path monitor says datagrams work: its flows take it. */
  up: boolean;
  tx: string;
  datagramsIn: number;
  datagramsOut: number;
  /** Frames handed to the lane that it could not send (its path went dark with them on the way). */
  lost: number;
  /** Frames dropped between the loop and the lane, either way, by CoDel (a standing queue). */
  aqmDrops: number;
  /** ... and at the MAX_WAITING cap. */
  queueFull: number;
  drops: Record<string, number>;
}

/** One record in a message buffer: [kind u8][vnet header, super-frames only][length u32 LE][bytes]. */
export const ITEM_FRAME = 0;
export const ITEM_SUPER = 1;
const STAGE_BYTES = 256 * 1024;
/** What the worker reports of itself. */
export type WorkerStats = Omit<LaneStatus, 'peerId' | 'up' | 'alive'>;
/**
 * Bytes handed over one way and not yet taken, at most: beyond it frames are dropped, for memory's sake
 * only (CoDel keeps the standing queue far below it; a full socket buffer is 2 MB).
 */
export const MAX_WAITING = 4 * 1024 * 1024;

/** Milliseconds on a clock both threads share (each thread's performance.now() has its own origin). */
export function laneNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Frames of a received buffer that CoDel lets through: drops (counted) only while the buffers' sojourn
 * has stood above target for an interval.
 */
export function admit(codel: CoDel, targetMs: number, m: LaneBuffer, fn: (frame: Buffer, hdr: Buffer | null) => void): number {
  const now = laneNow();
  const above = now - m.at > targetMs;
  let dropped = 0;
  forEachItem(m.buf, m.used, (frame, hdr) => {
    if (codel.offer(now, above)) dropped++;
    else fn(frame, hdr);
  });
  return dropped;
}

export interface Lane {
  readonly peerId: number;
  readonly up: boolean;
  /** Bytes handed to the lane and not yet taken by it (0 once its worker is gone). */
  readonly waiting: number;
  /** Queues a frame for the lane; it leaves at the end of this task at the earliest (LaneOutbox). */
  send(frame: Uint8Array): boolean;
  /** Queues a validated super-frame; returns its segment count. */
  sendSuperFrame(o: Offload, frame: Uint8Array): number;
  status(): LaneStatus;
  close(): void;
}

/** Bytes a lane may have still to take before the loop stops reading the TAP, and when it reads again. */
export const PAUSE_AT = 1024 * 1024;
export const RESUME_AT = 256 * 1024;

/**
 * Backpressure from the lanes to the TAP. A lane slower than the loop (its core busier, its flows
 * heavier) would otherwise grow a queue of the agent's own in front of it, of whole super-frames, which
 * only its 4 MB cap would bound. Past PAUSE_AT the loop stops reading the TAP, so what comes waits in the
 * kernel's queue in front of it instead (the TAP's ring, txqueuelen deep), where it waited with one lane,
 * the loop then being the slowest. Reading resumes when every lane is under RESUME_AT (looked at every
 * millisecond while paused) and always when the link closes.
 */
export class LanePressure {
  #paused = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly lanes: readonly Lane[],
    private readonly emit: (full: boolean) => void,
  ) {}

  /** After a send to `lane`; passes its result through. */
  sent<T>(lane: Lane, result: T): T {
    if (!this.#paused && lane.waiting > PAUSE_AT) {
      this.#paused = true;
      this.#timer = setInterval(this.#poll, 1);
      this.emit(true);
    }
    return result;
  }

  get paused(): boolean {
    return this.#paused;
  }

  release(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.emit(false);
  }

  readonly #poll = (): void => {
    if (this.lanes.every((l) => l.waiting < RESUME_AT)) this.release();
  };
}

/**
 * Where a lane worker's code comes from, set by the agent's entry module (cli.ts): its URL, or inside the
 * single binary, whose entry is no file, a function giving its source (the launcher's, sea.ts).
 */
export type WorkerEntry = string | { source(): string };
let entry: WorkerEntry | null = null;

export function setLaneEntry(e: WorkerEntry | null): void {
  entry = e;
}

/** The global the single binary's launcher sets (sea.ts): the bundle's source, for worker threads. */
export const WORKER_SOURCE_GLOBAL = '__ck_worker_source';

/**
 * The entry for `url`, the entry module's own: the launcher's source inside the single binary; null in one
 * whose launcher keeps none (its URL is the executable's, which a worker cannot load).
 */
export function workerEntry(url: string): WorkerEntry | null {
  const source = (globalThis as Record<string, unknown>)[WORKER_SOURCE_GLOBAL];
  if (typeof source === 'function') return { source: source as () => string };
  return url === pathToFileURL(process.execPath).href ? null : url;
}

/**
 * A worker thread running the entry module with `data` as its workerData (the entry looks at it to know
 * what to run); null when no entry was set.
 */
export function startEntryWorker(data: Record<string, unknown>): Worker | null {
  const e = entry;
  if (e === null) return null;
  if (typeof e !== 'string') return new Worker(e.source(), { eval: true, workerData: data });
  // A TypeScript entry (tests, the lab run from source) needs tsx's loader inside the worker too.
  if (e.endsWith('.ts'))
    return new Worker(`import('tsx/esm/api').then((a) => { a.register(); return import(${JSON.stringify(e)}); })`, {
      eval: true,
      workerData: data,
    });
  return new Worker(new URL(e), { workerData: data });
}

/** Buffers kept for reuse, and read buffers waiting to go back to the side that wrote them. */
const POOL_MAX = 8;
/** Read buffers held before they go back in a message of their own (else with the next data message). */
const RETURN_AT = 8;

export class BufferShuttle {
  readonly #pool: ArrayBuffer[] = [];
  #spent: ArrayBuffer[] = [];

  /** A buffer of at least `n` bytes: a returned one when it is big enough, else a new one. */
  get(n: number): Buffer {
    const b = n <= STAGE_BYTES ? this.#pool.pop() : undefined;
    return b !== undefined ? Buffer.from(b) : Buffer.allocUnsafeSlow(Math.max(STAGE_BYTES, n));
  }

  /** The other side's buffers, back. */
  give(bufs: readonly ArrayBuffer[]): void {
    for (const b of bufs) if (b.byteLength === STAGE_BYTES && this.#pool.length < POOL_MAX) this.#pool.push(b);
  }

  /** A buffer this side has read: it goes back once the microtasks of its delivery have run. */
  done(buf: ArrayBuffer): void {
    if (buf.byteLength !== STAGE_BYTES) return;
    queueMicrotask(() => this.#spent.push(buf));
  }

  /** The read buffers to send back now (transferred with the message that carries them). */
  returns(): ArrayBuffer[] {
    if (this.#spent.length === 0) return NONE;
    const r = this.#spent;
    this.#spent = [];
    return r;
  }

  /** Enough read buffers held that they should not wait for a data message. */
  get returnDue(): boolean {
    return this.#spent.length >= RETURN_AT;
  }
}
const NONE: ArrayBuffer[] = [];

/** A staging buffer writer: frames are copied in as they come and the buffer leaves whole. */
export class LaneBatch {
  buf: Buffer;
  used = 0;

  constructor(
    private readonly shuttle: BufferShuttle,
    size = STAGE_BYTES,
  ) {
    this.buf = shuttle.get(size);
  }

  /** Room for `n` more bytes; false when the current buffer must leave first. */
  fits(n: number): boolean {
    return this.used + n <= this.buf.length;
  }

  put(frame: Uint8Array, hdr?: Uint8Array): void {
    const b = this.buf;
    b[this.used++] = hdr === undefined ? ITEM_FRAME : ITEM_SUPER;
    if (hdr !== undefined) {
      b.set(hdr, this.used);
      this.used += VNET_HDR_LEN;
    }
    b.writeUInt32LE(frame.length, this.used);
    b.set(frame, this.used + 4);
    this.used += 4 + frame.length;
  }

  /** Hands over the buffer (to be transferred) and starts another, of `next` bytes at least. */
  take(next = 0): { buf: ArrayBuffer; used: number } {
    const out = { buf: this.buf.buffer as ArrayBuffer, used: this.used };
    this.buf = this.shuttle.get(next);
    this.used = 0;
    return out;
  }
}

/**
 * One direction between the loop and a lane: frames are copied into a buffer as they come and the buffer
 * is handed over at the end of the task, unless the other side has not taken the last one yet; then it
 * keeps filling, and leaves when the other side has (the next task that adds to it sees that) or within
 * a millisecond. Under load that makes one message of many read batches or TAP batches instead of one
 * each, the messages' fixed cost being what a busy side can least afford; an idle side never waits.
 */
export class LaneOutbox {
  readonly batch: LaneBatch;
  #handed = 0;
  #queued = false;
  #timer: NodeJS.Timeout | null = null;
  #firstAt = 0;
  /** Frames refused because MAX_WAITING bytes were still to be taken. */
  full = 0;

  constructor(
    private readonly shuttle: BufferShuttle,
    /** One Int32 the other side adds the bytes it has taken to (wrapping). */
    private readonly taken: Int32Array,
    private readonly send: (m: LaneBuffer) => void,
  ) {
    this.batch = new LaneBatch(shuttle);
  }

  /** Bytes handed over and not yet taken. */
  get waiting(): number {
    return (this.#handed - Atomics.load(this.taken, 0)) | 0;
  }

  /** Makes room for `n` more bytes in the batch, handing over a full one first; false (counted) at the cap. */
  room(n: number): boolean {
    const b = this.batch;
    if (this.waiting + b.used + n > MAX_WAITING) {
      this.full++;
      return false;
    }
    if (!b.fits(n)) {
      if (b.used > 0) this.#post(n);
      else b.take(n);
    }
    if (b.used === 0) this.#firstAt = laneNow();
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(this.#flush);
    }
    return true;
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  readonly #flush = (): void => {
    this.#queued = false;
    if (this.batch.used === 0) return;
    if (this.waiting === 0) this.#post(0);
    else this.#timer ??= setTimeout(this.#late, 1);
  };

  readonly #late = (): void => {
    this.#timer = null;
    if (this.batch.used > 0) this.#post(0);
  };

  #post(next: number): void {
    const m = this.batch.take(next);
    this.#handed = (this.#handed + m.used) | 0;
    this.send({ buf: m.buf, used: m.used, at: this.#firstAt, free: this.shuttle.returns() });
  }
}

/** Walks a message buffer's records. */
export function forEachItem(buf: ArrayBuffer, used: number, fn: (frame: Buffer, hdr: Buffer | null) => void): void {
  const b = Buffer.from(buf, 0, used);
  let off = 0;
  while (off < used) {
    const kind = b[off++];
    let hdr: Buffer | null = null;
    if (kind === ITEM_SUPER) {
      hdr = b.subarray(off, off + VNET_HDR_LEN);
      off += VNET_HDR_LEN;
    }
    const len = b.readUInt32LE(off);
    off += 4;
    fn(b.subarray(off, off + len), hdr);
    off += len;
  }
}

export interface LanesOptions extends LaneChannel {
  ids: readonly number[];
  keyBlock(peerId: number): Buffer;
  /** CoDel's target and interval for the queues between the loop and each lane (the agent's `aqm_*`). */
  aqm?: AqmOptions;
  log: Logger;
  /** Frames a lane received, one call per read batch; valid only during the call. */
  deliver(frames: Buffer[]): void;
}

/**
 * Starts one worker per further lane. A lane whose worker cannot start or dies stays down: its flows take
 * the first lane, and the log says why.
 */
export function startLanes(o: LanesOptions): Lane[] {
  if (entry === null) {
    o.log.warn('datagram lanes not started: this build names no entry module for their workers; one lane carries every flow');
    return [];
  }
  const lanes: Lane[] = [];
  for (const id of o.ids) {
    try {
      lanes.push(startLane(o, id));
    } catch (e) {
      o.log.warn('datagram lane not started: its flows take the first lane', { lane: id, error: (e as Error).message });
    }
  }
  return lanes;
}

function startLane(o: LanesOptions, peerId: number): Lane {
  const keyBlock = o.keyBlock(peerId);
  const init: LaneInit = {
    peerId,
    keyBlock: new Uint8Array(keyBlock),
    host: o.host,
    port: o.port,
    splits: o.splits,
    bundles: o.bundles,
    ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
    ...(o.sendThread === true ? { sendThread: true } : {}),
    ...(o.timing ? { timing: o.timing } : {}),
    aqm: o.aqm ?? AQM_DEFAULTS,
    txTaken: new SharedArrayBuffer(4),
    rxTaken: new SharedArrayBuffer(4),
  };
  keyBlock.fill(0);
  const rxTaken = new Int32Array(init.rxTaken);
  const codel = new CoDel(init.aqm.intervalMs);
  let rxAqmDrops = 0;
  const log = o.log.child({ lane: peerId });
  const worker = startEntryWorker({ ckLane: init }) as Worker;
  init.keyBlock.fill(0);
  let alive = true;
  let up = false;
  let closed = false;
  let stats: WorkerStats = { tx: 'tls', datagramsIn: 0, datagramsOut: 0, lost: 0, drops: {}, aqmDrops: 0, queueFull: 0 };
  const shuttle = new BufferShuttle();
  const out = new LaneOutbox(shuttle, new Int32Array(init.txTaken), (m) => {
    if (alive) worker.postMessage({ t: 'tx', ...m } satisfies ToLane, [m.buf, ...m.free]);
  });
  const vnetHdr = Buffer.alloc(VNET_HDR_LEN);
  worker.on('message', (m: FromLane) => {
    if (closed) return;
    if (m.t === 'rx') {
      shuttle.give(m.free);
      const frames: Buffer[] = [];
      rxAqmDrops += admit(codel, init.aqm.targetMs, m, (f) => frames.push(f));
      if (frames.length > 0) o.deliver(frames);
      Atomics.add(rxTaken, 0, m.used);
      shuttle.done(m.buf);
      if (shuttle.returnDue)
        queueMicrotask(() => {
          const free = shuttle.returns();
          if (free.length > 0 && alive) worker.postMessage({ t: 'free', free } satisfies ToLane, free);
        });
    } else if (m.t === 'free') shuttle.give(m.free);
    else if (m.t === 'state') {
      up = m.up;
      log.info('datagram lane', { up });
    } else if (m.t === 'stats') stats = m.stats;
    else log[m.level](m.msg, m.fields);
  });
  worker.on('error', (e) => {
    log.error('datagram lane failed: its flows take the first lane', { error: e.message });
  });
  worker.on('exit', (code) => {
    alive = false;
    up = false;
    if (!closed) log.warn('datagram lane worker exited: its flows take the first lane', { code });
  });
  return {
    peerId,
    get up() {
      return up && alive;
    },
    get waiting() {
      return alive ? out.waiting + out.batch.used : 0;
    },
    // Taken either way, as a socket takes what its full buffer then drops: false would send the frame by
    // TLS instead, past the frames of its flow still on the lane.
    send(frame) {
      if (out.room(1 + 4 + frame.length)) out.batch.put(frame);
      return true;
    },
    sendSuperFrame(off, frame) {
      if (!out.room(1 + VNET_HDR_LEN + 4 + frame.length)) return off.segments;
      writeVnetHdr(vnetHdr, 0, off.hdr);
      out.batch.put(frame, vnetHdr);
      return off.segments;
    },
    status: () => ({
      peerId,
      alive,
      up: up && alive,
      ...stats,
      aqmDrops: stats.aqmDrops + rxAqmDrops,
      queueFull: stats.queueFull + out.full,
    }),
    close() {
      if (closed) return;
      closed = true;
      up = false;
      out.close();
      if (alive) worker.postMessage({ t: 'close' } satisfies ToLane);
      // A worker that does not stop on its own within a second is stopped.
      setTimeout(() => void worker.terminate(), 1_000).unref();
    },
  };
}
