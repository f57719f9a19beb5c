// SPDX-License-Identifier: UNLICENSED
// One admitted tunnel connection on the headend: record decoding, the hello exchange, ping/pong,
// per-turn write coalescing with a bound on unsent bytes, idle (dead-peer) timeout. Bad input on this
// connection is counted and, when the stream cannot be resynchronised, closes this connection only.
import type { TLSSocket } from 'node:tls';
import { MAX_RECORD, RecordDecoder, recordSize, writeRecord } from '../../shared/tunnel/records.js';
import type { Logger } from '../../shared/log.js';
import {
  CONTROL_VNI,
  decodeControl,
  encodeControl,
  isControlFrame,
  type ControlMessage,
} from '../../shared/tunnel/control.js';
import { unreadBytesProbe } from '../../shared/native/socket-options.js';

export interface SessionIdentity {
  id: string;
  serial: string;
  tenant: string;
  segmentName: string;
  vni: number;
  remote: string;
  fingerprint: string;
}

export interface SessionOptions {
  keepaliveMs: number;
  deadAfterMs: number;
  helloTimeoutMs: number;
  maxBufferedBytes: number;
  headendVersion: string;
  /** Unread bytes in the kernel receive queue above which data frames are dropped; default 128 KiB. */
  maxRxBacklogBytes?: number;
}

/** About 1 ms of a gigabit: more than that waiting behind the frame being read is queueing delay. */
const DEFAULT_MAX_RX_BACKLOG = 128 * 1024;

export interface SessionHooks {
  /** Hello accepted: attach to the segment. */
  onUp(s: HeadendSession): void;
  onFrame(s: HeadendSession, frame: Buffer): void;
  onDrop(reason: string): void;
  onClose(s: HeadendSession, reason: string): void;
}

export interface SessionCounters {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
}

const BATCH_BYTES = 64 * 1024;

export class HeadendSession {
  state: 'hello' | 'up' | 'closed' = 'hello';
  readonly counters: SessionCounters = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 };
  readonly startedAt = Date.now();
  site = '';
  agentVersion = '';
  #decoder: RecordDecoder;
  #batch: Buffer | null = null;
  #batchLen = 0;
  #flushScheduled = false;
  #helloTimer: NodeJS.Timeout;
  #log: Logger;
  #unread: (() => number) | undefined;
  #behind = false;
  /** Data frames dropped because the kernel held more than maxRxBacklogBytes behind them. */
  rxBacklogDrops = 0;

  constructor(
    readonly socket: TLSSocket,
    readonly identity: SessionIdentity,
    private readonly options: SessionOptions,
    private readonly hooks: SessionHooks,
    log: Logger,
  ) {
    this.#log = log.child({ session: identity.id, serial: identity.serial });
    this.#decoder = new RecordDecoder(
      (vni, frame) => this.#onRecord(vni, frame),
      (reason) => hooks.onDrop(reason),
    );
    socket.setNoDelay(true);
    socket.setTimeout(options.deadAfterMs);
    socket.on('timeout', () => this.close('dead-peer'));
    // The receive buffer must stay autotuned (a WAN needs a window of rate x RTT), so when this process
    // falls behind, megabytes can wait in the kernel. The frames being read are the oldest: while more
    // than maxRxBacklogBytes wait behind them, they are dropped (head-drop), which inner TCPs see as
    // loss at once instead of as milliseconds of delay.
    this.#unread = unreadBytesProbe(socket);
    const maxBacklog = options.maxRxBacklogBytes ?? DEFAULT_MAX_RX_BACKLOG;
    socket.on('data', (chunk: Buffer) => {
      this.#behind = this.#unread !== undefined && this.state === 'up' && this.#unread() > maxBacklog;
      const err = this.#decoder.push(chunk);
      if (err) {
        hooks.onDrop(err);
        this.close(err);
      }
    });
    socket.on('error', (e) => {
      this.#log.debug('session socket error', { error: e.message });
      this.close('socket-error');
    });
    socket.on('close', () => this.close('peer-closed'));
    socket.on('end', () => this.close('peer-closed'));
    socket.on('drain', () => this.#scheduleFlush());
    this.#helloTimer = setTimeout(() => this.close('hello-timeout'), options.helloTimeoutMs);
  }

  #onRecord(vni: number, frame: Buffer): void {
    if (isControlFrame(vni, frame)) {
      const d = decodeControl(frame);
      if (!d.ok) {
        this.hooks.onDrop(d.drop);
        return;
      }
      this.#onControl(d.msg);
      return;
    }
    if (this.state !== 'up') {
      this.hooks.onDrop('before-hello');
      return;
    }
    if (this.#behind) {
      this.rxBacklogDrops++;
      this.hooks.onDrop('rx-backlog');
      return;
    }
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    // The VNI on the record is the device's claim; the segment comes from admission only.
    this.hooks.onFrame(this, frame);
  }

  #onControl(msg: ControlMessage): void {
    switch (msg.type) {
      case 'hello':
        if (this.state !== 'hello') return;
        clearTimeout(this.#helloTimer);
        this.site = msg.site;
        this.agentVersion = msg.agentVersion;
        this.state = 'up';
        this.sendControl({
          type: 'hello-ack',
          vni: this.identity.vni,
          sessionId: this.identity.id,
          headendVersion: this.options.headendVersion,
          keepaliveMs: this.options.keepaliveMs,
          deadAfterMs: this.options.deadAfterMs,
          capabilities: [],
        });
        this.#log.info('session up', { site: msg.site, agentVersion: msg.agentVersion, vni: this.identity.vni });
        this.hooks.onUp(this);
        return;
      case 'ping':
        this.sendControl({ type: 'pong', nonce: msg.nonce, t: msg.t });
        return;
      case 'bye':
        this.close(`bye:${msg.reason}`.slice(0, 64));
        return;
      default:
        return;
    }
  }

  /** Sends a control message (bypasses the byte bound: control traffic is tiny and must not be lost). */
  sendControl(msg: ControlMessage): void {
    if (this.state === 'closed') return;
    this.#append(CONTROL_VNI, encodeControl(msg));
  }

  /** Queues a data frame for this turn's write; false when the socket already holds too much. */
  sendFrame(frame: Buffer): boolean {
    if (this.state !== 'up') return false;
    if (this.socket.writableLength + this.#batchLen + recordSize(frame.length) > this.options.maxBufferedBytes) return false;
    this.#append(this.identity.vni, frame);
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    return true;
  }

  #append(vni: number, frame: Buffer): void {
    if (this.#batch && this.#batchLen + recordSize(frame.length) > this.#batch.length) this.#flush();
    if (!this.#batch) {
      this.#batch = Buffer.allocUnsafe(Math.max(BATCH_BYTES, MAX_RECORD + 2));
      this.#batchLen = 0;
    }
    this.#batchLen = writeRecord(this.#batch, this.#batchLen, vni, frame);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (!this.#batch || this.#batchLen === 0 || this.state === 'closed') return;
    const out = this.#batch.subarray(0, this.#batchLen);
    this.#batch = null;
    this.#batchLen = 0;
    this.socket.write(out);
  }

  /** Closes once; `bye` tells a live peer why (refusal after a registry change, replacement). */
  close(reason: string, bye = false): void {
    if (this.state === 'closed') return;
    if (bye) {
      this.sendControl({ type: 'bye', reason });
      this.#flush();
    }
    this.state = 'closed';
    clearTimeout(this.#helloTimer);
    if (bye) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2_000).unref();
    } else {
      this.socket.destroy();
    }
    this.hooks.onClose(this, reason);
  }
}
