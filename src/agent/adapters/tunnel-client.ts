// SPDX-License-Identifier: UNLICENSED
// The agent's side of the tunnel: an outbound TLS 1.3 client to one headend of a failover list, over the shared session
// core (src/shared/tunnel/session.ts, docs/tunnel-protocol.md). Here: mutual TLS with getIdentity()'s certificate each attempt
// (resuming a ticket when it holds one), a connect timeout over TCP, TLS and hello, reconnect walking the list (after a loss
// another headend at once, else full-jitter backoff widened by the headend's retry-after), socket tuning, counters.
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { errorMessage } from '../../shared/errors.js';
import type { Offload } from '../../shared/l2/tso-segment.js';
import type { Logger } from '../../shared/log.js';
import { tuneSocket } from '../../shared/native/socket-options.js';
import { monotonicClock, systemScheduler } from '../../shared/system-time.js';
import { alpnOffer, protocolOf } from '../../shared/tunnel/records-v2.js';
import { TunnelSession } from '../../shared/tunnel/session.js';
import { feedSession, tlsTransport } from '../../shared/tunnel/tls-transport.js';
import { AQM_DEFAULTS } from '../../shared/tunnel/codel.js';
import type { EgressAqmState } from '../../shared/tunnel/egress-queue.js';
import { afterLoss, backoffDelay, hintedDelay } from '../core/backoff.js';
import type { TunnelState } from '../core/ports.js';
import { TicketCache } from './tls-tickets.js';
import { hostOf, validate } from './tunnel-options.js';
import { datagramHello, datagramOffer, openDatagramLink, type DatagramLink } from './datagram-link.js';

const pick = (d: DatagramLink) => {
  const c = d.counters;
  return {
    datagramsIn: c.datagramsIn,
    datagramsOut: c.datagramsOut,
    switches: c.switches,
    splits: c.splits,
    bundles: c.bundles,
    plpmtu: d.plpmtu,
    blackHoles: d.blackHoles,
    socket: d.socket(),
    lanes: d.lanes(),
  };
};
const dgExtras = (o: TunnelClientOptions) => ({
  ...(o.datagram?.port ? { port: o.datagram.port } : {}),
  ...(o.datagram?.timing ? { timing: o.datagram.timing } : {}),
  ...(o.datagram?.sendThread === true ? { sendThread: true } : {}),
  ...((o.datagram?.lanes ?? 1) > 1 ? { lanes: true, ...(o.aqm ? { aqm: o.aqm } : {}) } : {}),
  ...(o.localAddress ? { localAddress: o.localAddress } : {}),
});

export type { TunnelState };
export type { StateInfo, TunnelClient, TunnelClientOptions, TunnelCounters, TunnelIdentity, TunnelStatus } from './tunnel-client-types.js';
import type { StateInfo, TunnelClient, TunnelClientOptions, TunnelIdentity, TunnelStatus } from './tunnel-client-types.js';

const DEFAULT_MAX_BUFFERED = 64 * 1024;
const NO_AQM: EgressAqmState = Object.freeze({ dropping: false, count: 0, drops: 0, sojournMs: 0, activeFlows: 0 });
/** TCP_NOTSENT_LOWAT for the tunnel socket: about ten full records beyond what is in flight. */
const NOTSENT_LOWAT = 16 * 1024;
/** How long a socket that sent its bye may linger before it is destroyed. */
const BYE_GRACE_MS = 1_000;

export function createTunnelClient(options: TunnelClientOptions): TunnelClient {
  validate(options);
  return new Client(options);
}

class Client implements TunnelClient {
  readonly #o: Required<Omit<TunnelClientOptions, 'localAddress' | 'datagram'>> & Pick<TunnelClientOptions, 'localAddress' | 'datagram'>;
  readonly #log: Logger;
  /** Counters of sessions that ended; the live session's are added in status(). */
  readonly #done = { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, queueOverflowDrops: 0, queueAqmDrops: 0 };
  readonly #decodeDrops: Record<string, number> = {};
  readonly #frameHandlers: ((frames: readonly Buffer[]) => void)[] = [];
  #offloadHandler: ((vnetHdr: Buffer, frame: Buffer) => void) | undefined;
  readonly #stateHandlers: ((state: TunnelState, info: StateInfo) => void)[] = [];
  readonly #offloadHandlers: (() => void)[] = [];
  readonly #pressureHandlers: ((full: boolean) => void)[] = [];
  #state: TunnelState = 'idle';
  #sinceMs = Date.now();
  #socket: TLSSocket | null = null;
  #session: TunnelSession | null = null;
  #index = 0;
  #attempt = 0;
  #reconnects = 0;
  #notUpDrops = 0;
  /** The RTT of the last session that measured one: kept across reconnects until a new one is known. */
  #lastRtt: number | null = null;
  #lastError: string | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #closed: Promise<void> | null = null;
  readonly #tickets = new TicketCache();
  #resumed = false;
  #dg: DatagramLink | null = null;

  constructor(options: TunnelClientOptions) {
    this.#o = {
      maxBufferedBytes: DEFAULT_MAX_BUFFERED,
      aqm: AQM_DEFAULTS,
      connectTimeoutMs: options.deadAfterMs,
      random: Math.random,
      clock: monotonicClock,
      scheduler: systemScheduler,
      maxProtocol: 2,
      offload: false,
      ...options,
    };
    this.#log = options.log;
  }

  get state(): TunnelState {
    return this.#state;
  }

  start(): void {
    if (this.#state !== 'idle') return;
    void this.#connect();
  }

  sendFrames(frames: readonly Buffer[]): number {
    const s = this.#session;
    if (this.#state !== 'up' || s === null) {
      this.#notUpDrops += frames.length;
      return 0;
    }
    this.#dg?.clamp(frames);
    return s.sendBatch(frames);
  }

  /** False unless the session takes super-frames now (OFFLOAD records on TLS, or cut into datagrams). */
  sendOffload(vnetHdr: Buffer, frame: Buffer, parsed?: Offload): boolean {
    return this.#session?.sendOffload(vnetHdr, frame, parsed) ?? false;
  }

  offloadUp(): boolean {
    return this.#state === 'up' && this.#session?.takesSuperFrames === true;
  }

  /** One handler: the TAP writes OFFLOAD records with their virtio_net_hdr. */
  onOffload(handler: (vnetHdr: Buffer, frame: Buffer) => void): void {
    this.#offloadHandler = handler;
  }

  onFrames(handler: (frames: readonly Buffer[]) => void): void {
    this.#frameHandlers.push(handler);
  }

  onBackpressure(handler: (full: boolean) => void): void {
    this.#pressureHandlers.push(handler);
  }

  onOffloadChange(handler: () => void): void {
    this.#offloadHandlers.push(handler);
  }

  onStateChange(handler: (state: TunnelState, info: StateInfo) => void): void {
    this.#stateHandlers.push(handler);
  }

  peerCapabilities(): readonly string[] {
    const s = this.#session;
    return s !== null && s.state === 'up' ? (s.peerAck?.capabilities ?? []) : [];
  }

  status(): TunnelStatus {
    const s = this.#session;
    const d = this.#done;
    const e = s?.egress.counters;
    const rtt = s?.rttMs ?? this.#lastRtt;
    const up = s !== null && s.state === 'up';
    return {
      state: this.#state,
      headend: this.#state === 'idle' || this.#state === 'closed' ? null : this.#current(),
      vni: up ? s.vni : null,
      sessionId: up ? (s.peerAck?.sessionId ?? null) : null,
      rttMs: rtt === null ? null : Math.round(rtt * 1000) / 1000,
      sinceMs: this.#sinceMs,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      queuedFrames: s?.egress.length ?? 0,
      aqm: s?.egress.aqm ?? NO_AQM,
      tlsResumed: up && this.#resumed,
      transport: up && this.#dg ? this.#dg.tx : 'tls',
      datagram: up && this.#dg ? { tx: this.#dg.tx, reason: this.#dg.reason, ...pick(this.#dg) } : null,
      protocol: up ? { version: s.protocol, offload: s.offloadAgreed } : null,
      counters: {
        txFrames: d.txFrames + (e?.sentFrames ?? 0) + (s?.counters.datagramFramesOut ?? 0),
        txBytes: d.txBytes + (e?.sentBytes ?? 0) + (s?.counters.datagramBytesOut ?? 0),
        rxFrames: d.rxFrames + (s?.counters.framesIn ?? 0),
        rxBytes: d.rxBytes + (s?.counters.bytesIn ?? 0),
        queueOverflowDrops: d.queueOverflowDrops + (e?.overflowDrops ?? 0),
        queueAqmDrops: d.queueAqmDrops + (e?.aqmDrops ?? 0),
        notUpDrops: this.#notUpDrops,
        decodeDrops: { ...this.#decodeDrops },
      },
    };
  }

  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    const socket = this.#socket;
    const session = this.#session;
    const wasUp = this.#state === 'up';
    this.#clearTimers();
    this.#setState('closed', { reason: 'closed by the agent' });
    this.#socket = null;
    this.#session = null;
    this.#closeDatagram();
    if (session) this.#keepCounters(session);
    this.#closed = new Promise<void>((resolve) => {
      if (!socket || socket.destroyed) {
        session?.close('closed by the agent');
        resolve();
        return;
      }
      socket.once('close', () => resolve());
      session?.close('closed by the agent', wasUp ? 'agent-shutdown' : undefined);
    });
    return this.#closed;
  }

  #current(): string {
    return this.#o.headends[this.#index]?.host ?? '';
  }

  #setState(next: TunnelState, info: StateInfo): void {
    if (this.#state === next) return;
    this.#state = next;
    this.#sinceMs = Date.now();
    for (const h of this.#stateHandlers) h(next, info);
  }

  #closeDatagram(): void {
    this.#dg?.close();
    this.#dg = null;
  }

  #clearTimers(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#retryTimer = this.#connectTimer = null;
  }

  #countDrop(reason: string): void {
    this.#decodeDrops[reason] = (this.#decodeDrops[reason] ?? 0) + 1;
  }

  #keepCounters(s: TunnelSession): void {
    if (s.rttMs !== null) this.#lastRtt = s.rttMs;
    const d = this.#done;
    const e = s.egress.counters;
    d.txFrames += e.sentFrames + s.counters.datagramFramesOut;
    d.txBytes += e.sentBytes + s.counters.datagramBytesOut;
    d.queueOverflowDrops += e.overflowDrops;
    d.queueAqmDrops += e.aqmDrops;
    d.rxFrames += s.counters.framesIn;
    d.rxBytes += s.counters.bytesIn;
  }

  #retry(delayMs: number): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, delayMs);
  }

  /** The current session ended (`reason`): back off, and move on in the list unless it had been up. */
  #onSessionClosed(s: TunnelSession, reason: string): void {
    if (s !== this.#session) return; // closed by close(), or a stale session
    const wasUp = this.#state === 'up';
    this.#closeDatagram();
    this.#keepCounters(s);
    this.#session = null;
    this.#socket = null;
    this.#clearTimers();
    this.#lastError = reason;
    if (reason.startsWith('headend-error:refused')) this.#tickets.forget(this.#current());
    if (wasUp) {
      this.#attempt = 0;
      this.#log.warn('tunnel down', { headend: this.#current(), reason });
    } else {
      this.#attempt++;
      this.#log.warn('tunnel attempt failed', { headend: this.#current(), reason, attempt: this.#attempt });
      this.#index = (this.#index + 1) % this.#o.headends.length;
    }
    this.#reconnects++;
    const hint = s.peerRetryAfterMs;
    const delay = wasUp ? this.#failover(hint) : hintedDelay(this.#attempt - 1, this.#o.backoff, hint, this.#o.random());
    if (hint !== null) this.#log.info('headend asked to retry later', { headend: this.#current(), retryAfterMs: hint, delayMs: delay });
    this.#setState('backoff', { headend: this.#current(), reason });
    this.#retry(delay);
  }

  /** After an up session was lost: core/backoff.ts afterLoss. */
  #failover(retryAfterMs: number | null): number {
    const next = afterLoss(this.#index, this.#o.headends.length, this.#o.backoff, retryAfterMs, this.#o.random());
    return ((this.#index = next.index), next.delayMs);
  }

  async #connect(): Promise<void> {
    if (this.#state === 'closed') return;
    const o = this.#o;
    const url = o.headends[this.#index];
    if (!url) return;
    this.#setState('connecting', { headend: url.host });
    let id: TunnelIdentity;
    try {
      id = await o.getIdentity();
    } catch (e) {
      // No socket yet: back off the same way as after a failed attempt.
      this.#lastError = `identity: ${errorMessage(e)}`;
      this.#log.error('cannot load the device identity', { error: errorMessage(e) });
      this.#attempt++;
      this.#reconnects++;
      this.#setState('backoff', { reason: this.#lastError });
      this.#retry(backoffDelay(this.#attempt - 1, o.backoff, o.random()));
      return;
    }
    if ((this.#state as TunnelState) === 'closed') return;
    const host = hostOf(url);
    const socket = tlsConnect({
      host,
      port: url.port ? Number(url.port) : 443,
      key: id.key,
      cert: id.cert,
      ca: id.ca,
      minVersion: 'TLSv1.3',
      ALPNProtocols: alpnOffer(o.maxProtocol),
      ...(isIP(host) ? {} : { servername: host }),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      ...this.#tickets.sessionFor(url.host, id.cert),
    });
    this.#tickets.watch(socket, url.host, id.cert);
    const dgOn = o.datagram?.enabled === true;
    const transport = tlsTransport(socket, { endGraceMs: BYE_GRACE_MS });
    const session = new TunnelSession(
      {
        role: 'client',
        clock: o.clock,
        scheduler: o.scheduler,
        egress: { maxFrames: o.sendQueueFrames, holdUnsentBytes: o.maxBufferedBytes, aqm: o.aqm },
        hello: dgOn ? { ...o.hello, capabilities: [...o.hello.capabilities, ...datagramHello(o.datagram?.lanes)] } : o.hello,
        keepaliveMs: o.keepaliveMs,
        deadAfterMs: o.deadAfterMs,
        offload: o.offload,
      },
      transport,
      {
        up: (s) => {
          if (this.#connectTimer) clearTimeout(this.#connectTimer);
          this.#connectTimer = null;
          this.#attempt = 0;
          const ack = s.peerAck;
          this.#resumed = socket.isSessionReused();
          this.#log.info('tunnel up', {
            headend: this.#current(),
            tlsResumed: this.#resumed,
            vni: ack?.vni,
            session: ack?.sessionId,
            headendVersion: ack?.headendVersion,
            protocol: s.protocol,
          });
          const offer = dgOn ? datagramOffer(ack?.capabilities ?? []) : null;
          if (offer)
            this.#dg = openDatagramLink({
              session: s,
              keys: transport,
              host: socket.remoteAddress ?? host,
              offer,
              clock: o.clock,
              log: this.#log,
              txChanged: () => {
                for (const h of this.#offloadHandlers) h();
              },
              backpressure: (full) => {
                for (const h of this.#pressureHandlers) h(full);
              },
              ...dgExtras(o),
            });
          this.#setState('up', { headend: this.#current() });
        },
        dgState: (msg) => this.#log.debug('headend transport', { tx: msg.tx, reason: msg.reason }),
        frames: (batch) => {
          this.#dg?.clamp(batch);
          for (const h of this.#frameHandlers) h(batch);
        },
        offload: (h, f) => this.#offloadHandler?.(h, f),
        drop: (reason) => this.#countDrop(reason),
        closed: (reason) => this.#onSessionClosed(session, reason),
      },
    );
    this.#socket = socket;
    this.#session = session;
    this.#connectTimer = setTimeout(() => session.close('connect-timeout'), o.connectTimeoutMs);
    feedSession(socket, session, {
      error: (e) => (e.code ? `${e.code}: ${e.message}` : e.message),
      end: 'connection closed by headend',
      close: 'connection closed',
    });
    socket.once('secureConnect', () => {
      const version = protocolOf(socket.alpnProtocol, o.maxProtocol);
      if (version === null) return session.close(`alpn: headend chose ${String(socket.alpnProtocol)}`);
      // Unsent bytes in the kernel are queueing delay for every inner flow: keep them to a few records.
      const tuned = tuneSocket(socket, { notsentLowat: NOTSENT_LOWAT });
      if (!tuned.ok) this.#log.debug('tunnel socket not tuned', { reason: tuned.reason });
      session.open(version);
    });
  }
}
