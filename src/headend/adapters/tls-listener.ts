// SPDX-License-Identifier: UNLICENSED
// The headend's TLS 1.3 listener: mutual TLS against the device CA bundle, ALPN required, stalled
// handshakes cut off. Every connection that completes with a client certificate is handed on with the
// certificate's serial and fingerprint; admission decides in core/admission.ts. Handshake failures are
// mapped to refusal reasons for metrics and logs.
import type { X509Certificate } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../../shared/log.js';
import { certFingerprint, subjectSerial } from '../../shared/pki/x509.js';
import { controlRecord, type ProtocolVersion } from '../../shared/tunnel/framing.js';
import { alpnOffer, protocolOf } from '../../shared/tunnel/records-v2.js';
import { RefusalLog } from '../../shared/net/refusal-log.js';
import { guardConnections } from '../../shared/net/service-guard.js';
import type { PeerCertificate } from '../core/admission.js';
import { HandshakeGate, type PacingOptions } from '../core/pacing.js';
import { listen } from './listen.js';
import { installTicketKeys } from './ticket-keys.js';

/**
 * Maps a handshake failure to a refusal reason for metrics and logs. With rejectUnauthorized, Node
 * verifies the client chain after the handshake and destroys the socket, leaving the OpenSSL verify
 * code in `authorizationError` while the error itself only says "socket hang up".
 */
export function handshakeRefusalReason(e: NodeJS.ErrnoException, authorizationError?: string): string {
  if (authorizationError === 'CERT_HAS_EXPIRED') return 'cert-expired';
  if (authorizationError === 'CERT_NOT_YET_VALID') return 'cert-not-yet-valid';
  if (authorizationError === 'CERT_REVOKED') return 'cert-revoked';
  if (authorizationError) return 'cert-untrusted';
  const code = e.code ?? '';
  const msg = e.message.toLowerCase();
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || msg.includes('unsupported protocol') || msg.includes('version')) return 'tls-version';
  if (code.includes('PEER_DID_NOT_RETURN_A_CERTIFICATE') || msg.includes('did not return a certificate')) return 'no-client-cert';
  if (msg.includes('certificate verify failed') || code.includes('CERTIFICATE_VERIFY_FAILED')) return 'cert-verify-failed';
  if (msg.includes('application protocol') || code.includes('NO_APPLICATION_PROTOCOL')) return 'alpn';
  if (code === 'ECONNRESET' || msg.includes('socket hang up')) return 'handshake-aborted';
  return 'handshake-failed';
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  key: string;
  cert: string;
  /** The device CA bundle client certificates must chain to. */
  deviceCa: string;
  handshakeTimeoutMs: number;
  /** The kernel's accept queue for the listener. */
  backlog?: number;
  /** Connections open at once, and from one address; over either a connection is closed before TLS. */
  maxConnections?: number;
  maxPerSource?: number;
  /** Shared TLS 1.3 ticket keys (core/ticket-keys.ts); none: Node's own per-process keys. */
  ticketKeysFile?: string | null;
  /** How long a session ticket resumes, seconds. */
  ticketLifetimeS?: number;
  /**
   * Runs a completed handshake's admission (certificate, `onPeer`) when the loop has time (a reconnect
   * storm completes hundreds in one turn); none: at once.
   */
  defer?(fn: () => void): void;
  /** A completed handshake, full or resumed (a ticket). */
  onHandshake?(resumed: boolean): void;
  /** Admission pacing (core/pacing.ts): handshakes at once, the queue for a slot, the start rate. */
  pacing?: PacingOptions;
  log: Logger;
  /** Highest tunnel protocol version accepted by ALPN (default 2); 1 rolls back to v1 framing. */
  maxProtocol?: ProtocolVersion;
  /** A connection refused before admission, by reason. */
  onRefused(reason: string): void;
  /** A connection with a client certificate, ready for admission; `protocol` is its stream grammar (ALPN). */
  onPeer(socket: TLSSocket, peer: PeerCertificate, protocol: ProtocolVersion): void;
}

export interface TlsListener {
  readonly address: AddressInfo;
  /** Connections in their handshake or waiting for a slot (admission pacing). */
  readonly admitting: number;
  /**
   * Stops accepting and resolves once every connection has closed; connections still open after
   * `graceMs` (peers slow to answer a bye, handshakes in progress) are closed from this side. With
   * `leaveOpen` (the process exits next) it stops reading them, resolves once each has handed its last
   * bytes to the kernel (or after the grace) and leaves them for the exit to close.
   */
  close(graceMs?: number, leaveOpen?: boolean): Promise<void>;
}

/** Tells a refused peer why (an `error` control record), then closes. */
export function refuseConnection(socket: TLSSocket, reason: string): void {
  const version = protocolOf(socket.alpnProtocol, 2) ?? 1;
  socket.end(controlRecord(version, { type: 'error', code: 'refused', message: reason }));
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/**
 * Stops reading a connection at the kernel. Node has no public call for it: pause() goes on reading into
 * the stream's buffer and still ends and closes the socket when the peer closes.
 */
function stopReading(socket: TLSSocket): void {
  (socket as unknown as { _handle?: { readStop?: () => number } | null })._handle?.readStop?.();
}

/** Every connection has handed what was written to it (and its end, if ended) to the kernel, or is gone. */
function allFlushed(sockets: Iterable<TLSSocket>): boolean {
  for (const s of sockets) if (!s.destroyed && (s.writableLength > 0 || (s.writableEnded && !s.writableFinished))) return false;
  return true;
}

/** Resolves once `done()` holds (looked at every few ms) or after `ms`. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, Math.min(5, Math.max(0, end - Date.now()))));
}

/** Without pacing options every connection starts its handshake at once (tests of other things). */
const UNPACED: PacingOptions = { maxHandshakes: 1e9, maxQueued: 0, maxWaitMs: 0, acceptPerS: 1e9, acceptBurst: 1e9 };
/** How often the queue is looked at while it holds connections (a finished handshake also looks). */
const PUMP_MS = 10;
/** How often the ticket keys file is looked at for a rotation. */
const TICKET_POLL_MS = 10_000;

export async function openTlsListener(o: TlsListenerOptions): Promise<TlsListener> {
  const { log } = o;
  const refusals = new RefusalLog();
  const maxProtocol = o.maxProtocol ?? 2;
  const server = createServer({
    key: o.key,
    cert: o.cert,
    ca: o.deviceCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    // Node's server picks by its own order: /2 for an agent that offers it, /1 for a v1 agent.
    ALPNProtocols: alpnOffer(maxProtocol),
    // Refuse handshakes that stall (slowloris) well before the session's own timers take over.
    handshakeTimeout: o.handshakeTimeoutMs,
    ...(o.ticketLifetimeS !== undefined ? { sessionTimeout: o.ticketLifetimeS } : {}),
  });
  const tickets = o.ticketKeysFile ? installTicketKeys(server, o.ticketKeysFile, TICKET_POLL_MS, log) : null;
  // A handshake's slot is freed once: when it completes, fails, or its connection closes.
  const finishers = new Map<string, () => void>();
  const finish = (key: string): void => finishers.get(key)?.();
  const defer = o.defer ?? ((fn: () => void) => fn());
  let closing = false;
  // Connections past their handshake, for an exiting shutdown to watch their byes leave.
  const secured = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    finish(remote);
    socket.on('error', () => {});
    secured.add(socket);
    socket.once('close', () => secured.delete(socket));
    o.onHandshake?.(socket.isSessionReused());
    // Whatever the client sends meanwhile (its hello) waits in the socket's buffer.
    defer(() => admit(socket, remote));
  });
  const admit = (socket: TLSSocket, remote: string): void => {
    // A client that left while its handshake finished, or while it waited here, gets no admission work
    // (registry, session, audit); nor does one whose turn comes after the listener began to close.
    if (closing) {
      socket.destroy();
      return;
    }
    if (socket.destroyed || !socket.writable || socket.readableEnded) {
      o.onRefused('gone');
      socket.destroy();
      return;
    }
    const protocol = protocolOf(socket.alpnProtocol, maxProtocol);
    if (protocol === null) {
      o.onRefused('alpn');
      log.warn('refused: ALPN', { remote, alpn: String(socket.alpnProtocol) });
      socket.destroy();
      return;
    }
    let cert: X509Certificate | undefined;
    try {
      cert = socket.getPeerX509Certificate();
    } catch {
      cert = undefined;
    }
    if (!cert) {
      o.onRefused('no-client-cert');
      socket.destroy();
      return;
    }
    // A resumed session's certificate was verified when its ticket was issued: its validity is checked
    // again here (the registry's revocation is checked by admission for every connection).
    if (socket.isSessionReused() && !(Date.parse(cert.validTo) > Date.now() && Date.parse(cert.validFrom) <= Date.now())) {
      o.onRefused('cert-expired');
      log.warn('refused: resumed session with an expired certificate', { remote, validTo: cert.validTo });
      socket.destroy();
      return;
    }
    o.onPeer(socket, { serial: subjectSerial(cert.subject) ?? '', fingerprint: certFingerprint(cert), remote }, protocol);
  };
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: TLSSocket) => {
    finish(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`);
    const verify = socket.authorizationError ? String(socket.authorizationError) : undefined;
    const reason = handshakeRefusalReason(e, verify);
    o.onRefused(reason);
    // Under a flood of bad handshakes one line each would bury everything else: a few per window, then
    // a count (the refusals metric has every one).
    refusals.note(reason, Date.now(), (suppressed) =>
      log.warn('refused: TLS handshake', {
        remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
        reason,
        error: e.message.trim(),
        ...(verify ? { verify } : {}),
        ...(suppressed > 0 ? { suppressedInLastWindow: suppressed } : {}),
      }),
    );
    socket.destroy();
  });
  // The kernel's accept queue feeds a plain TCP server whose sockets stay paused (nothing read, no TLS
  // work) until the gate gives them a handshake slot; then the TLS server takes them over.
  const tcp = createNetServer({ pauseOnConnect: true });
  guardConnections(tcp, {
    name: 'tunnel listener',
    maxConnections: o.maxConnections ?? 20_000,
    maxPerSource: o.maxPerSource ?? 1_000,
    idleTimeoutMs: 0,
    log,
  });
  const gate = new HandshakeGate<Socket>(o.pacing ?? UNPACED, Date.now());
  const refusePaced = (raw: Socket, reason: string): void => {
    o.onRefused(reason);
    refusals.note(reason, Date.now(), (suppressed) =>
      log.warn('refused: admission paced', {
        remote: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? 0}`,
        reason,
        handshakes: gate.inProgress,
        queued: gate.queued,
        ...(suppressed > 0 ? { suppressedInLastWindow: suppressed } : {}),
      }),
    );
    // A reset, not a FIN: the client fails at once (and backs off), and no TIME_WAIT is left here.
    raw.resetAndDestroy();
  };
  let pumpTimer: NodeJS.Timeout | null = null;
  const pump = (): void => {
    const { start, expired, evicted } = gate.pump(Date.now());
    for (const raw of expired) refusePaced(raw, 'paced-wait');
    for (const raw of evicted) refusePaced(raw, 'paced-queue-full');
    for (const raw of start) startTls(raw);
    if (gate.queued > 0 && pumpTimer === null) {
      pumpTimer = setTimeout(() => {
        pumpTimer = null;
        pump();
      }, PUMP_MS);
    }
  };
  const startTls = (raw: Socket): void => {
    const key = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? 0}`;
    let done = false;
    const fin = (): void => {
      if (done) return;
      done = true;
      finishers.delete(key);
      gate.finished();
      if (gate.queued > 0) pump();
    };
    if (raw.destroyed) return fin();
    finishers.set(key, fin);
    raw.once('close', fin);
    server.emit('connection', raw);
  };
  // Every accepted connection until it closes, so a shutdown can end the ones that linger.
  const open = new Set<Socket>();
  const offer = (raw: Socket): void => {
    const d = gate.offer(Date.now(), raw, raw.remoteAddress ?? '?');
    if (d === 'start') startTls(raw);
    else if (d === 'refused') refusePaced(raw, 'paced-queue-full');
    else pump();
  };
  tcp.on('connection', (raw: Socket) => {
    if (raw.destroyed) return; // refused by the connection caps
    open.add(raw);
    raw.on('error', () => {});
    // The gate is offered a connection once its client has spoken (the ClientHello's first segment),
    // read here and handed back to the TLS server with the connection. Then the handshake's first and
    // dearest step runs when the gate starts it, not whenever a slow or crowded client gets round to
    // sending (a fleet's hellos arriving together after their slots were given: 48 of them held the loop
    // 100 ms), and a client that connects and says nothing never holds a slot.
    const silent = setTimeout(() => {
      o.onRefused('client-hello-timeout');
      raw.destroy();
    }, o.handshakeTimeoutMs);
    raw.once('close', () => {
      clearTimeout(silent);
      open.delete(raw);
    });
    raw.once('data', (first: Buffer) => {
      clearTimeout(silent);
      raw.pause();
      raw.unshift(first);
      offer(raw);
    });
    raw.resume();
  });
  const address = await listen(tcp, o.host, o.port, 'tunnels (listen)', o.backlog);
  tcp.on('error', (e) => log.error('tunnel listener error', { error: e.message }));
  return {
    address,
    get admitting() {
      return gate.inProgress + gate.queued;
    },
    close: async (graceMs = Number.POSITIVE_INFINITY, leaveOpen = false) => {
      closing = true;
      if (pumpTimer) clearTimeout(pumpTimer);
      tickets?.stop();
      const left = gate.pump(Number.MAX_SAFE_INTEGER);
      for (const raw of [...left.expired, ...left.evicted]) raw.destroy();
      const closed = new Promise<void>((r) => tcp.close(() => r()));
      if (leaveOpen) {
        // The process exits next and its exit closes every descriptor. What must happen first is that
        // each bye reaches the kernel; nothing more is read, so the peers' answers (thousands of close
        // events at 200 us each, a second at 5,000) do not hold the exit back.
        for (const s of secured) stopReading(s);
        await until(() => allFlushed(secured), graceMs);
        return;
      }
      if (open.size > 0 && Number.isFinite(graceMs)) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
        // Whatever reached the kernel (a bye, TLS close_notify) is still sent after the descriptor
        // closes; only a peer that stopped reading loses its bye, and it reconnects either way.
        for (const raw of open) raw.destroy();
      }
      await closed;
    },
  };
}
