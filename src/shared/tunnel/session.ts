// SPDX-License-Identifier: UNLICENSED
// One tunnel session, the same code at both ends (docs/tunnel-protocol.md): the record stream, the hello
// exchange, keepalive ping/pong with RTT, dead-peer detection, control dispatch, and per-turn writes of
// control and data records through the bounded egress queue. The agent's client is role 'client', the
// headend's session role 'server'. Pure: bytes come in through receive(), leave through the transport
// port, and time comes from the injected clock and scheduler.
//
// Liveness: a session is dead when no byte arrived for deadAfterMs. The client starts watching when the
// hello-ack arrives and pings every keepaliveMs (the smaller of its own and the headend's), so a healthy
// session never goes quiet; the server watches from the start, never pings, and also closes a session
// that sends no hello within helloTimeoutMs.
import type { Cancel } from '../ports.js';
import type { ByeMessage, ControlMessage, DecodedControl, HelloAckMessage, HelloMessage } from './control.js';
import type { Offload } from '../l2/tso-segment.js';
import { CoDel } from './codel.js';
import { EgressQueue } from './egress-queue.js';
import { controlRecord, streamReader, withOffload, type ProtocolVersion, type StreamReader } from './framing.js';
import type { SessionCounters, SessionState, TunnelSessionEvents, TunnelSessionOptions, TunnelTransport } from './session-types.js';

export type {
  ClientSessionOptions,
  ServerSessionOptions,
  TunnelSessionEvents,
  TunnelSessionOptions,
  TunnelTransport,
} from './session-types.js';

const MIN_TICK_MS = 50;

export class TunnelSession {
  state: SessionState = 'hello';
  readonly role: 'client' | 'server';
  readonly counters: SessionCounters = { framesIn: 0, bytesIn: 0, rxAqmDrops: 0, datagramFramesOut: 0, datagramBytesOut: 0 };
  readonly egress: EgressQueue;
  /** The peer's hello (server) or hello-ack (client), once the exchange completed. */
  peerHello: HelloMessage | null = null;
  peerAck: HelloAckMessage | null = null;
  /** VNI of this session's data records: the server's from admission, the client's from the hello-ack. */
  vni: number | null = null;
  /** The stream grammar, fixed by ALPN at open(). */
  protocol: ProtocolVersion = 1;
  /** Both ends accept OFFLOAD records (v2 capability `offload`, negotiated by the hello exchange). */
  offloadAgreed = false;
  /** Round-trip time of the latest answered ping, ms (the client's keepalives, the headend's probes). */
  rttMs: number | null = null;
  /** The window the peer's bye or error asked the client to spread its next attempt over (control.ts). */
  peerRetryAfterMs: number | null = null;
  /**
   * The datagram channel's send side, set while it carries this side's data: a frame it takes (true)
   * leaves as a datagram; otherwise the frame goes through the TLS queue as ever.
   */
  datagramTx: ((frame: Uint8Array) => boolean) | null = null;
  /**
   * Set beside datagramTx when the channel cuts TCP super-frames into datagrams itself (in C): a validated
   * super-frame it takes (true) leaves as one datagram per segment, counted as that many frames.
   */
  datagramTxOffload: ((o: Offload, frame: Uint8Array) => number) | null = null;

  readonly #o: TunnelSessionOptions;
  readonly #transport: TunnelTransport;
  readonly #events: TunnelSessionEvents;
  #reader: StreamReader | null = null;
  readonly #batch: Buffer[] = [];
  readonly #out: Buffer[] = [];
  readonly #controls: Buffer[] = [];
  readonly #rxAqm: CoDel | null;
  readonly #rxTargetBytes: number;
  #controlBytes = 0;
  #flushCancel: Cancel | null = null;
  #helloCancel: Cancel | null = null;
  #tickCancel: Cancel | null = null;
  #lastRxAt = 0;
  #lastPingAt = 0;
  #pingEveryMs = 0;
  #pingNonce = 0;
  /** The kernel held more than the receive AQM's target behind the current read. */
  #behind = false;
  #rxNow = 0;

  constructor(options: TunnelSessionOptions, transport: TunnelTransport, events: TunnelSessionEvents) {
    this.#o = options;
    this.role = options.role;
    this.#transport = transport;
    this.#events = events;
    this.egress = new EgressQueue(options.egress);
    this.#rxAqm = options.rxAqm && options.rxAqm.targetBytes > 0 ? new CoDel(options.rxAqm.intervalMs) : null;
    this.#rxTargetBytes = options.rxAqm?.targetBytes ?? Infinity;
    if (options.role === 'server') this.vni = options.ack.vni;
  }

  /** The transport is ready, speaking `protocol` (its ALPN): the client says hello, the server starts its timers. */
  open(protocol: ProtocolVersion = 1): void {
    if (this.state !== 'hello' || this.#reader !== null) return;
    const o = this.#o;
    this.#setProtocol(protocol);
    if (o.role === 'client') {
      const capabilities = withOffload(protocol, o.offload === true, o.hello.capabilities);
      this.sendControl({ type: 'hello', agentVersion: o.hello.agentVersion, site: o.hello.site, capabilities });
      return;
    }
    this.#helloCancel = o.scheduler.setTimeout(() => this.close('hello-timeout'), o.helloTimeoutMs);
    this.#watch(o.ack.deadAfterMs, 0);
  }

  /** Bytes read from the transport. */
  receive(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.#lastRxAt = this.#rxNow = this.#o.clock.now();
    const unread = this.#transport.unreadBytes;
    this.#behind = this.#rxAqm !== null && unread !== undefined && this.state === 'up' && unread() > this.#rxTargetBytes;
    const err = (this.#reader ?? this.#setProtocol(1)).push(chunk);
    this.#deliver();
    if (err) {
      this.#events.drop(err);
      this.close(err);
    }
  }

  /** The transport took its unsent bytes: what waited for room may leave. */
  drain(): void {
    if (this.state !== 'closed' && (this.egress.length > 0 || this.#controls.length > 0)) this.#flush();
  }

  /** Queues one data frame for this turn's write; false when not up, refused or not carriable. */
  send(frame: Uint8Array): boolean {
    if (this.state !== 'up' || this.vni === null) return false;
    if (this.#viaDatagram(frame)) return true;
    const ok = this.egress.push(this.vni, frame, this.#o.clock.now());
    if (ok) this.#scheduleFlush();
    return ok;
  }

  /** Super-frames go whole when agreed and this side's data is not on datagrams: one flow's segments must not race
   *  each other over two paths, so the sender segments them into datagrams instead. */
  get offload(): boolean {
    return this.offloadAgreed && this.datagramTx === null;
  }

  /** Super-frames are taken whole now: as OFFLOAD records on TLS, or cut into datagrams by the channel. */
  get takesSuperFrames(): boolean {
    return this.datagramTx !== null ? this.datagramTxOffload !== null : this.offloadAgreed;
  }

  /**
   * Queues one super-frame: cut into datagrams while this side's data is on them (`parsed`, the forwarder's
   * validation, is what the channel cuts by), else as an OFFLOAD record when `offload` was negotiated.
   * False when neither takes it: the caller segments it into frames.
   */
  sendOffload(vnetHdr: Uint8Array, frame: Uint8Array, parsed?: Offload): boolean {
    if (this.state !== 'up' || this.vni === null) return false;
    if (this.datagramTx !== null) {
      if (parsed === undefined || !parsed.gso || this.datagramTxOffload === null) return false;
      const n = this.datagramTxOffload(parsed, frame);
      if (n === 0) return false;
      this.counters.datagramFramesOut += n;
      // As the frames it became: every segment carries the headers.
      this.counters.datagramBytesOut += parsed.ipEnd + (n - 1) * parsed.headers;
      return true;
    }
    if (!this.offload) return false;
    const ok = this.egress.push(this.vni, frame, this.#o.clock.now(), vnetHdr);
    if (ok) this.#scheduleFlush();
    return ok;
  }

  /** Queues a batch of data frames; returns how many were queued. */
  sendBatch(frames: readonly Uint8Array[]): number {
    if (this.state !== 'up' || this.vni === null) return 0;
    const now = this.#o.clock.now();
    let queued = 0;
    let datagrams = 0;
    for (const f of frames) {
      if (this.#viaDatagram(f)) datagrams++;
      else if (this.egress.push(this.vni, f, now)) queued++;
    }
    if (queued > 0) this.#scheduleFlush();
    return queued + datagrams;
  }

  /** Data frames that arrived by the datagram channel (authentic, in order): delivered as a read's are. */
  receiveFrames(frames: readonly Buffer[]): void {
    if (this.state !== 'up') {
      for (let i = 0; i < frames.length; i++) this.#events.drop('before-hello');
      return;
    }
    for (const f of frames) {
      this.counters.framesIn++;
      this.counters.bytesIn += f.length;
    }
    this.#events.frames(frames);
  }

  /** Queues a control message ahead of this turn's data (control traffic is tiny and never dropped). */
  sendControl(msg: ControlMessage): void {
    if (this.state === 'closed') return;
    const rec = controlRecord(this.protocol, msg);
    this.#controls.push(rec);
    this.#controlBytes += rec.length;
    this.#scheduleFlush();
  }

  /**
   * Closes once. With `bye`, what is queued leaves first, then a bye with that reason, and the transport
   * half-closes; without, the transport is destroyed at once. `retryAfterMs` goes in the bye. `leaveOpen`
   * (a bye given, the process exits next): the transport is neither ended nor destroyed; the exit closes it.
   */
  close(reason: string, bye?: string, retryAfterMs?: number, leaveOpen = false): void {
    if (this.state === 'closed') return;
    if (bye !== undefined) {
      // What was queued before the bye leaves before it.
      this.#flush();
      const msg: ByeMessage = { type: 'bye', reason: bye, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      this.#transport.write([controlRecord(this.protocol, msg)]);
    }
    this.state = 'closed';
    this.#cancelTimers();
    this.datagramTx = null;
    this.datagramTxOffload = null;
    this.#controls.length = 0;
    this.egress.clear();
    if (bye === undefined) this.#transport.destroy();
    else if (!leaveOpen) this.#transport.end();
    this.#events.closed(reason);
  }

  #viaDatagram(frame: Uint8Array): boolean {
    if (this.datagramTx === null || !this.datagramTx(frame)) return false;
    this.counters.datagramFramesOut++;
    this.counters.datagramBytesOut += frame.length;
    return true;
  }

  #setProtocol(v: ProtocolVersion): StreamReader {
    this.protocol = v;
    this.egress.version = v;
    this.#reader = streamReader(v, {
      frame: (vni, f) => this.#onRecord(vni, f),
      offload: (vni, h, f) => this.#onOffload(vni, h, f),
      control: (d) => this.#onControlRecord(d),
      drop: (r) => this.#events.drop(r),
    });
    return this.#reader;
  }

  #onControlRecord(d: DecodedControl): void {
    // Frames before a control message are handed on first: a bye must not overtake the data before it.
    this.#deliver();
    if (d.ok) this.#onControl(d.msg);
    else this.#events.drop(d.drop);
  }

  #onOffload(vni: number, vnetHdr: Buffer, frame: Buffer): void {
    const on = this.#events.offload;
    if (!this.#accepts(vni)) return;
    if (!this.offloadAgreed || on === undefined) {
      this.#events.drop('offload-unexpected');
      return;
    }
    this.#deliver();
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    on(vnetHdr, frame);
  }

  /** The checks every data record passes: the session is up, the VNI is right, the receive AQM lets it in. */
  #accepts(vni: number): boolean {
    if (this.state !== 'up') {
      this.#events.drop('before-hello');
      return false;
    }
    // The server takes the segment from admission only; a client expects the VNI it was given.
    if (this.role === 'client' && vni !== this.vni) {
      this.#events.drop('vni-mismatch');
      return false;
    }
    if (this.#rxAqm !== null && this.#rxAqm.offer(this.#rxNow, this.#behind)) {
      this.counters.rxAqmDrops++;
      this.#events.drop('rx-aqm');
      return false;
    }
    return true;
  }

  #onRecord(vni: number, frame: Buffer): void {
    if (!this.#accepts(vni)) return;
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    this.#batch.push(frame);
  }

  #deliver(): void {
    if (this.#batch.length === 0) return;
    try {
      if (this.state !== 'closed') this.#events.frames(this.#batch);
    } finally {
      this.#batch.length = 0;
    }
  }

  #onControl(msg: ControlMessage): void {
    const o = this.#o;
    switch (msg.type) {
      case 'hello':
        if (o.role !== 'server' || this.state !== 'hello') return;
        this.#helloCancel?.();
        this.#helloCancel = null;
        this.peerHello = msg;
        {
          const decided = o.onHello ? o.onHello(msg) : o.ack;
          if (typeof decided === 'string') {
            this.sendControl({ type: 'error', code: 'refused', message: decided });
            this.close(`refused:${decided}`.slice(0, 64), 'refused');
            return;
          }
          // `offload` is symmetric ("I accept OFFLOAD records"): chosen when both ends want it on a v2 stream.
          this.offloadAgreed = this.protocol === 2 && o.offload === true && msg.capabilities.includes('offload');
          const capabilities = withOffload(this.protocol, this.offloadAgreed, decided.capabilities);
          const ack = { ...o.ack, vni: decided.vni, capabilities };
          this.vni = ack.vni;
          this.state = 'up';
          this.sendControl({ type: 'hello-ack', ...ack });
        }
        this.#events.up(this);
        return;
      case 'hello-ack': {
        if (o.role !== 'client' || this.state !== 'hello') return;
        this.peerAck = msg;
        this.vni = msg.vni;
        this.offloadAgreed = this.protocol === 2 && o.offload === true && msg.capabilities.includes('offload');
        this.state = 'up';
        // Ping at least as often as the headend asks, so its idle timer never closes a healthy session.
        const every = msg.keepaliveMs > 0 ? Math.min(o.keepaliveMs, msg.keepaliveMs) : o.keepaliveMs;
        this.#watch(o.deadAfterMs, every);
        this.#events.up(this);
        if (this.state === 'up') this.ping(o.clock.now()); // the RTT known within one round trip of coming up
        return;
      }
      case 'ping':
        this.sendControl({ type: 'pong', nonce: msg.nonce, t: msg.t });
        return;
      case 'pong':
        if (msg.nonce === this.#pingNonce) this.rttMs = Math.max(0, o.clock.now() - msg.t);
        return;
      case 'bye':
        if (msg.retryAfterMs !== undefined) this.peerRetryAfterMs = msg.retryAfterMs;
        this.close(`bye:${msg.reason}`.slice(0, 64));
        return;
      case 'dg-state':
        this.#events.dgState?.(msg);
        return;
      case 'error':
        if (o.role !== 'client') return;
        if (msg.retryAfterMs !== undefined) this.peerRetryAfterMs = msg.retryAfterMs;
        this.close(`headend-error:${msg.code}:${msg.message}`);
        return;
    }
  }

  /** Starts the liveness tick: dead after `deadAfterMs` without a byte, a ping every `pingEveryMs` (0: none). */
  #watch(deadAfterMs: number, pingEveryMs: number): void {
    const o = this.#o;
    this.#lastRxAt = o.clock.now();
    this.#lastPingAt = 0;
    this.#pingEveryMs = pingEveryMs;
    const tickMs = Math.max(
      MIN_TICK_MS,
      pingEveryMs > 0 ? Math.min(pingEveryMs, Math.floor(deadAfterMs / 4)) : Math.floor(deadAfterMs / 4),
    );
    this.#tickCancel = o.scheduler.setInterval(() => {
      const now = o.clock.now();
      if (now - this.#lastRxAt >= deadAfterMs) {
        this.close('dead-peer');
        return;
      }
      if (this.#pingEveryMs > 0 && now - this.#lastPingAt >= this.#pingEveryMs) this.ping(now);
    }, tickMs);
  }

  /** A ping now: the client's keepalive, and the headend's RTT probe (rttMs is set when its pong comes back). */
  ping(now: number): void {
    this.#lastPingAt = now;
    this.#pingNonce = (this.#pingNonce + 1) >>> 0;
    this.sendControl({ type: 'ping', nonce: this.#pingNonce, t: now });
  }

  #scheduleFlush(): void {
    if (this.#flushCancel !== null) return;
    this.#flushCancel = this.#o.scheduler.setImmediate(() => {
      this.#flushCancel = null;
      this.#flush();
    });
  }

  /** Writes the queued control records, then the data records the egress queue lets go, as one write. */
  #flush(): void {
    this.#flushCancel?.();
    this.#flushCancel = null;
    if (this.state === 'closed') return;
    const out = this.#out;
    const t = this.#transport;
    let pending = 0;
    if (this.#controls.length > 0) {
      for (const c of this.#controls) out.push(c);
      pending = this.#controlBytes;
      this.#controls.length = 0;
      this.#controlBytes = 0;
    }
    if (this.state === 'up') {
      const now = this.#o.clock.now();
      for (let first = true; this.egress.length > 0; first = false) {
        if (!first) {
          t.write(out);
          out.length = 0;
          pending = 0;
        }
        if (this.egress.drain(now, t.unsentBytes() + pending, out) === 0) break;
      }
    }
    if (out.length > 0) t.write(out);
    out.length = 0;
  }

  #cancelTimers(): void {
    for (const c of [this.#flushCancel, this.#helloCancel, this.#tickCancel]) c?.();
    this.#flushCancel = this.#helloCancel = this.#tickCancel = null;
  }
}
