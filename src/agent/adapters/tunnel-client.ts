// SPDX-License-Identifier: UNLICENSED
// The agent's side of the tunnel: an outbound TLS 1.3 client (never listens) that carries Ethernet frames
// as records (src/shared/l2/stream.ts) to one headend of a failover list. Behaviour (docs/tunnel-protocol.md):
//   - mutual TLS: the device certificate from getIdentity() on every attempt (a renewed certificate is
//     used on the next connection), the headend verified against the configured CA only, ALPN required;
//   - versioned hello before data; the VNI comes from the headend's hello-ack;
//   - keepalive pings with RTT, dead peer after deadAfterMs without any record from the headend;
//   - reconnect with jittered exponential backoff, walking the headend list on failed attempts;
//   - setNoDelay, one write per event-loop turn, a bounded send queue with head-drop and a bound on the
//     bytes the socket may hold unsent (dropping beats queueing: TCP-over-TCP, see the data-plane notes).
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { errorMessage } from '../../shared/errors.js';
import { MAX_RECORD, RecordDecoder, encodeRecord, recordSize } from '../../shared/tunnel/records.js';
import type { Logger } from '../../shared/log.js';
import {
  ALPN_PROTOCOL,
  CONTROL_VNI,
  decodeControl,
  encodeControl,
  isControlFrame,
  type ControlMessage,
} from '../../shared/tunnel/control.js';
import { backoffDelay, checkBackoffOptions, type BackoffOptions } from '../core/backoff.js';
import { SendQueue } from '../../shared/tunnel/egress-queue.js';
import { tuneSocket } from '../../shared/native/socket-options.js';

export type TunnelState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

export interface TunnelIdentity {
  key: string;
  cert: string;
  /** The DC CA the headend certificate must chain to (no system roots are used). */
  ca: string;
}

export interface TunnelClientOptions {
  /** tls://host:port, tried in order for failover; port defaults to 443. */
  headends: readonly URL[];
  getIdentity: () => Promise<TunnelIdentity>;
  hello: { agentVersion: string; site: string; capabilities: readonly string[] };
  keepaliveMs: number;
  deadAfterMs: number;
  backoff: BackoffOptions;
  sendQueueFrames: number;
  log: Logger;
  /** Source address for the outbound socket. */
  localAddress?: string;
  /** Unsent bytes the socket may hold before frames wait (and head-drop) in the queue; default 64 KiB. */
  maxBufferedBytes?: number;
  /** A frame that waited this long in the send queue is dropped instead of sent; default 2 ms. */
  maxQueueDelayMs?: number;
  /** TCP connect + TLS handshake + hello must finish within this; default deadAfterMs. */
  connectTimeoutMs?: number;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

export type TunnelCounters = {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames dropped at the head of the full send queue. */
  queueDrops: number;
  /** Frames dropped at the head of the send queue after waiting longer than maxQueueDelayMs. */
  queueExpired: number;
  /** Frames offered while the tunnel was not up. */
  notUpDrops: number;
  decodeDrops: Record<string, number>;
};

export type TunnelStatus = {
  state: TunnelState;
  headend: string | null;
  vni: number | null;
  sessionId: string | null;
  rttMs: number | null;
  /** Wall-clock ms (Date.now()) when the current state began. */
  sinceMs: number;
  reconnects: number;
  lastError: string | null;
  queuedFrames: number;
  counters: TunnelCounters;
};

export type StateInfo = { headend?: string; reason?: string };

export interface TunnelLink {
  readonly state: TunnelState;
  start(): void;
  sendFrames(frames: readonly Buffer[]): number;
  onFrames(handler: (frames: readonly Buffer[]) => void): void;
  onStateChange(handler: (state: TunnelState, info: StateInfo) => void): void;
  status(): TunnelStatus;
  close(): Promise<void>;
}

const DEFAULT_MAX_BUFFERED = 64 * 1024;
/** Longer than a busy loop turn, short enough that a saturating flow cannot build a standing queue. */
const DEFAULT_MAX_QUEUE_DELAY_MS = 2;
/** TCP_NOTSENT_LOWAT for the tunnel socket: about ten full records beyond what is in flight. */
const NOTSENT_LOWAT = 16 * 1024;

function validate(o: TunnelClientOptions): void {
  if (o.headends.length === 0) throw new RangeError('createTunnelClient: at least one headend URL is required');
  for (const u of o.headends) {
    if (u.protocol !== 'tls:') throw new RangeError(`headend URL ${u.href} must use tls://host:port`);
  }
  if (!(o.keepaliveMs > 0) || !(o.deadAfterMs > o.keepaliveMs)) {
    throw new RangeError(`need 0 < keepaliveMs < deadAfterMs, got ${o.keepaliveMs} and ${o.deadAfterMs}`);
  }
  checkBackoffOptions(o.backoff);
}

function hostOf(u: URL): string {
  return u.hostname.replace(/^\[(.*)\]$/, '$1');
}

export function createTunnelClient(options: TunnelClientOptions): TunnelLink {
  validate(options);
  const o = { maxBufferedBytes: DEFAULT_MAX_BUFFERED, maxQueueDelayMs: DEFAULT_MAX_QUEUE_DELAY_MS, connectTimeoutMs: options.deadAfterMs, random: Math.random, ...options };
  const log = o.log;
  const queue = new SendQueue(o.sendQueueFrames);
  const counters: TunnelCounters = { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, queueDrops: 0, queueExpired: 0, notUpDrops: 0, decodeDrops: {} };
  const frameHandlers: ((frames: readonly Buffer[]) => void)[] = [];
  const stateHandlers: ((state: TunnelState, info: StateInfo) => void)[] = [];

  let state: TunnelState = 'idle';
  let sinceMs = Date.now();
  let socket: TLSSocket | null = null;
  let index = 0;
  let attempt = 0;
  let reconnects = 0;
  let lastError: string | null = null;
  let vni: number | null = null;
  let sessionId: string | null = null;
  let rttMs: number | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let connectTimer: NodeJS.Timeout | null = null;
  let tickTimer: NodeJS.Timeout | null = null;
  let lastRxAt = 0;
  let lastPingAt = 0;
  let pingNonce = 0;
  let flushScheduled = false;
  let waitingDrain = false;
  let closedPromise: Promise<void> | null = null;

  const current = (): string => o.headends[index]?.host ?? '';
  const countDrop = (reason: string): void => {
    counters.decodeDrops[reason] = (counters.decodeDrops[reason] ?? 0) + 1;
  };

  const setState = (next: TunnelState, info: StateInfo): void => {
    if (state === next) return;
    state = next;
    sinceMs = Date.now();
    for (const h of stateHandlers) h(next, info);
  };

  const clearTimers = (): void => {
    for (const t of [connectTimer, tickTimer]) if (t) clearTimeout(t);
    connectTimer = null;
    if (tickTimer) clearInterval(tickTimer);
    tickTimer = null;
  };

  const sendControl = (s: TLSSocket, msg: ControlMessage): void => {
    s.write(encodeRecord(CONTROL_VNI, encodeControl(msg)));
  };

  const flush = (): void => {
    flushScheduled = false;
    const s = socket;
    if (!s || state !== 'up' || vni === null || queue.length === 0) return;
    counters.queueExpired += queue.dropOlderThan(performance.now() - o.maxQueueDelayMs);
    if (queue.length === 0) return;
    if (s.writableLength >= o.maxBufferedBytes) {
      if (!waitingDrain) {
        waitingDrain = true;
        s.once('drain', () => {
          waitingDrain = false;
          flush();
        });
      }
      return;
    }
    const limit = Math.max(o.maxBufferedBytes - s.writableLength, recordSize(MAX_RECORD));
    const buf = Buffer.allocUnsafe(Math.min(queue.recordBytes, limit));
    const { end, frames } = queue.drainInto(buf, 0, buf.length, vni);
    if (frames === 0) return;
    counters.txFrames += frames;
    counters.txBytes += end - frames * recordSize(0);
    s.write(buf.subarray(0, end));
    if (queue.length > 0) flush();
  };

  const scheduleFlush = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  };

  const fail = (s: TLSSocket, reason: string): void => {
    if (s !== socket) return; // a stale socket's late event
    const wasUp = state === 'up';
    socket = null;
    clearTimers();
    s.destroy();
    queue.clear();
    waitingDrain = false;
    vni = null;
    sessionId = null;
    lastError = reason;
    if (state === 'closed') return;
    if (wasUp) {
      // The headend worked a moment ago: retry it first, from the shortest delay.
      attempt = 0;
      log.warn('tunnel down', { headend: current(), reason });
    } else {
      attempt++;
      log.warn('tunnel attempt failed', { headend: current(), reason, attempt });
      index = (index + 1) % o.headends.length;
    }
    reconnects++;
    const delay = backoffDelay(wasUp ? 0 : attempt - 1, o.backoff, o.random());
    setState('backoff', { headend: current(), reason });
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void connect();
    }, delay);
  };

  const onControl = (s: TLSSocket, msg: ControlMessage): void => {
    switch (msg.type) {
      case 'hello-ack': {
        if (state !== 'connecting') return;
        if (connectTimer) clearTimeout(connectTimer);
        connectTimer = null;
        vni = msg.vni;
        sessionId = msg.sessionId;
        attempt = 0;
        lastRxAt = performance.now();
        lastPingAt = 0;
        // Ping at least as often as the headend asks, so its idle timer never closes a healthy session.
        const keepaliveMs = msg.keepaliveMs > 0 ? Math.min(o.keepaliveMs, msg.keepaliveMs) : o.keepaliveMs;
        const tickMs = Math.max(50, Math.min(keepaliveMs, Math.floor(o.deadAfterMs / 4)));
        tickTimer = setInterval(() => {
          const now = performance.now();
          if (now - lastRxAt >= o.deadAfterMs) {
            fail(s, 'dead-peer');
            return;
          }
          if (now - lastPingAt >= keepaliveMs) {
            lastPingAt = now;
            pingNonce = (pingNonce + 1) >>> 0;
            sendControl(s, { type: 'ping', nonce: pingNonce, t: now });
          }
        }, tickMs);
        log.info('tunnel up', { headend: current(), vni: msg.vni, session: msg.sessionId, headendVersion: msg.headendVersion });
        setState('up', { headend: current() });
        // First ping right away so RTT is known within one round trip of coming up.
        lastPingAt = performance.now();
        pingNonce = (pingNonce + 1) >>> 0;
        sendControl(s, { type: 'ping', nonce: pingNonce, t: lastPingAt });
        return;
      }
      case 'pong':
        if (msg.nonce === pingNonce) rttMs = Math.max(0, performance.now() - msg.t);
        return;
      case 'ping':
        sendControl(s, { type: 'pong', nonce: msg.nonce, t: msg.t });
        return;
      case 'bye':
        fail(s, `bye:${msg.reason}`);
        return;
      case 'error':
        fail(s, `headend-error:${msg.code}:${msg.message}`);
        return;
      default:
        return;
    }
  };

  const attach = (s: TLSSocket): void => {
    let batch: Buffer[] = [];
    let arena: Buffer = Buffer.alloc(0);
    let arenaPos = 0;
    const decoder = new RecordDecoder(
      (recVni, frame) => {
        lastRxAt = performance.now();
        if (isControlFrame(recVni, frame)) {
          const d = decodeControl(frame);
          if (d.ok) onControl(s, d.msg);
          else countDrop(d.drop);
          return;
        }
        if (state !== 'up') {
          countDrop('before-hello');
          return;
        }
        if (recVni !== vni) {
          countDrop('vni-mismatch');
          return;
        }
        // The decoder's views die with the callback; copy into this chunk's arena (one allocation per chunk).
        frame.copy(arena, arenaPos);
        batch.push(arena.subarray(arenaPos, arenaPos + frame.length));
        arenaPos += frame.length;
        counters.rxFrames++;
        counters.rxBytes += frame.length;
      },
      countDrop,
    );
    s.on('data', (chunk: Buffer) => {
      arena = Buffer.allocUnsafe(chunk.length + MAX_RECORD);
      arenaPos = 0;
      const err = decoder.push(chunk);
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        for (const h of frameHandlers) h(out);
      }
      if (err) {
        countDrop(err);
        fail(s, err);
      }
    });
  };

  const connect = async (): Promise<void> => {
    if (state === 'closed') return;
    const url = o.headends[index];
    if (!url) return;
    setState('connecting', { headend: url.host });
    let id: TunnelIdentity;
    try {
      id = await o.getIdentity();
    } catch (e) {
      // No socket yet: schedule the retry through a placeholder so backoff applies the same way.
      lastError = `identity: ${errorMessage(e)}`;
      log.error('cannot load the device identity', { error: errorMessage(e) });
      attempt++;
      reconnects++;
      setState('backoff', { reason: lastError });
      retryTimer = setTimeout(() => void connect(), backoffDelay(attempt - 1, o.backoff, o.random()));
      return;
    }
    if ((state as TunnelState) === 'closed') return;
    const host = hostOf(url);
    const s = tlsConnect({
      host,
      port: url.port ? Number(url.port) : 443,
      key: id.key,
      cert: id.cert,
      ca: id.ca,
      minVersion: 'TLSv1.3',
      ALPNProtocols: [ALPN_PROTOCOL],
      ...(isIP(host) ? {} : { servername: host }),
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
    socket = s;
    connectTimer = setTimeout(() => fail(s, 'connect-timeout'), o.connectTimeoutMs);
    s.on('error', (e: NodeJS.ErrnoException) => fail(s, e.code ? `${e.code}: ${e.message}` : e.message));
    s.on('close', () => fail(s, 'connection closed'));
    s.on('end', () => fail(s, 'connection closed by headend'));
    s.once('secureConnect', () => {
      if (s.alpnProtocol !== ALPN_PROTOCOL) {
        fail(s, `alpn: headend chose ${String(s.alpnProtocol)}`);
        return;
      }
      s.setNoDelay(true);
      // Unsent bytes in the kernel are queueing delay for every inner flow: keep them to a few records.
      const tuned = tuneSocket(s, { notsentLowat: NOTSENT_LOWAT });
      if (!tuned.ok) log.debug('tunnel socket not tuned', { reason: tuned.reason });
      sendControl(s, { type: 'hello', agentVersion: o.hello.agentVersion, site: o.hello.site, capabilities: o.hello.capabilities });
    });
    attach(s);
  };

  return {
    get state() {
      return state;
    },
    start() {
      if (state !== 'idle') return;
      void connect();
    },
    sendFrames(frames) {
      if (state !== 'up') {
        counters.notUpDrops += frames.length;
        return 0;
      }
      let n = 0;
      const before = queue.drops;
      const now = performance.now();
      for (const f of frames) if (queue.push(f, now)) n++;
      counters.queueDrops += queue.drops - before;
      if (n > 0) scheduleFlush();
      return n;
    },
    onFrames(handler) {
      frameHandlers.push(handler);
    },
    onStateChange(handler) {
      stateHandlers.push(handler);
    },
    status() {
      return {
        state,
        headend: state === 'idle' || state === 'closed' ? null : current(),
        vni,
        sessionId,
        rttMs: rttMs === null ? null : Math.round(rttMs * 1000) / 1000,
        sinceMs,
        reconnects,
        lastError,
        queuedFrames: queue.length,
        counters: { ...counters, decodeDrops: { ...counters.decodeDrops } },
      };
    },
    close() {
      if (closedPromise) return closedPromise;
      const s = socket;
      const wasUp = state === 'up';
      if (wasUp) flush();
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      clearTimers();
      setState('closed', { reason: 'closed by the agent' });
      socket = null;
      closedPromise = new Promise<void>((resolve) => {
        if (!s || s.destroyed) {
          resolve();
          return;
        }
        s.once('close', () => resolve());
        if (wasUp) {
          sendControl(s, { type: 'bye', reason: 'agent-shutdown' });
          s.end();
          setTimeout(() => s.destroy(), 1_000).unref();
        } else {
          s.destroy();
        }
      });
      return closedPromise;
    },
  };
}
