// SPDX-License-Identifier: UNLICENSED
// The guard every network service of the datacentre puts in front of itself (EST, the OTA artifact
// server, the console, the headend's metrics listener): a global connection cap and a per-source cap
// (refused by closing at once, counted), TLS handshake, header, request and idle timeouts, a 400 for a
// request the HTTP parser refuses, and refusals logged at a bounded rate. What is left to each service:
// answering every request it accepts (wrap the handler with `safeHandler`) and honouring back-pressure on
// its response streams (`pipeline`).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { RefusalLog } from './refusal-log.js';

export interface ServiceGuardOptions {
  /** The service's name in logs and counters. */
  readonly name: string;
  /** Connections open at once; default 4,096. */
  readonly maxConnections?: number;
  /** Connections open at once from one address; default 64. */
  readonly maxPerSource?: number;
  /** A TLS handshake must finish within this (pass `tlsOptions()` to createServer); default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Request headers must arrive within this; default 10 s. */
  readonly headersTimeoutMs?: number;
  /** A whole request (headers and body) must arrive within this; default 60 s. */
  readonly requestTimeoutMs?: number;
  /** A connection with no traffic for this long is closed; default 30 s. */
  readonly idleTimeoutMs?: number;
  readonly log: Logger;
}

export interface GuardCounters {
  /** Connections refused because the service held maxConnections. */
  refusedGlobal: number;
  /** Connections refused because their address held maxPerSource. */
  refusedPerSource: number;
  /** Requests the HTTP parser refused (400) or that timed out (408). */
  badRequests: number;
  /** TLS handshakes that failed or timed out. */
  tlsFailures: number;
  /** Connections closed for idleness. */
  idleClosed: number;
}

export const GUARD_DEFAULTS = Object.freeze({
  maxConnections: 4_096,
  maxPerSource: 64,
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
});

export interface ServiceGuard {
  readonly counters: GuardCounters;
  /** Connections open now. */
  readonly open: () => number;
}

/**
 * Options to spread into `https.createServer`: the handshake timeout, and a check of the headers and
 * request timeouts every second (Node checks every 30 s by default, so a 10 s limit became up to 40 s).
 */
export function tlsOptions(o: Pick<ServiceGuardOptions, 'handshakeTimeoutMs'> = {}): {
  handshakeTimeout: number;
  connectionsCheckingInterval: number;
} {
  return { handshakeTimeout: o.handshakeTimeoutMs ?? GUARD_DEFAULTS.handshakeTimeoutMs, connectionsCheckingInterval: 1_000 };
}

export function guardServer(server: HttpServer | HttpsServer, o: ServiceGuardOptions): ServiceGuard {
  const maxConnections = o.maxConnections ?? GUARD_DEFAULTS.maxConnections;
  const maxPerSource = o.maxPerSource ?? GUARD_DEFAULTS.maxPerSource;
  const idleMs = o.idleTimeoutMs ?? GUARD_DEFAULTS.idleTimeoutMs;
  const counters: GuardCounters = { refusedGlobal: 0, refusedPerSource: 0, badRequests: 0, tlsFailures: 0, idleClosed: 0 };
  const refusals = new RefusalLog();
  const refuse = (kind: string, fields: Record<string, unknown>): void =>
    refusals.note(kind, Date.now(), (suppressed) =>
      o.log.warn(`${o.name}: ${kind}`, { ...fields, ...(suppressed > 0 ? { suppressedInLastWindow: suppressed } : {}) }),
    );

  server.headersTimeout = o.headersTimeoutMs ?? GUARD_DEFAULTS.headersTimeoutMs;
  server.requestTimeout = o.requestTimeoutMs ?? GUARD_DEFAULTS.requestTimeoutMs;
  server.keepAliveTimeout = Math.min(5_000, idleMs);

  const conns = guardConnections(
    server,
    { name: o.name, maxConnections, maxPerSource, idleTimeoutMs: idleMs, log: o.log },
    counters,
    refuse,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https forwards TLS failures (a handshake timeout too) here after 'tlsClientError' counted them: no
    // HTTP answer can be written on a connection whose handshake never finished, and ending it politely
    // would hold it open until the client leaves.
    if (!(err.code ?? '').startsWith('HPE_') && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy();
      return;
    }
    counters.badRequests++;
    refuse('bad request', { remote: socket.remoteAddress, error: err.code ?? err.message });
    if (socket.writable && !socket.destroyed) {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    counters.tlsFailures++;
    refuse('TLS handshake failed', { remote: socket.remoteAddress, error: err.code ?? err.message });
  });
  return { counters, open: conns.open };
}

/**
 * Wraps a request handler so that nothing it throws or rejects takes the process down: the client gets
 * a 500 (or the connection is closed when the answer had started) and the error is logged.
 */
export function safeHandler(
  name: string,
  log: Logger,
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const fail = (e: unknown): void => {
      log.error(`${name}: request failed`, { path: req.url, error: errorMessage(e) });
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' });
        res.end('internal error\n');
      }
    };
    try {
      const r = handler(req, res);
      if (r instanceof Promise) r.catch(fail);
    } catch (e) {
      fail(e);
    }
  };
}

export interface ConnectionCapOptions {
  readonly name: string;
  readonly maxConnections: number;
  readonly maxPerSource: number;
  /** Close a connection silent this long; 0: never (a tunnel has its own liveness). */
  readonly idleTimeoutMs: number;
  readonly log: Logger;
}

/**
 * The connection caps alone, for any TCP or TLS server (the headend's tunnel listener uses these without
 * the HTTP parts): over either cap a connection is closed at once, before any TLS work, and counted.
 */
export function guardConnections(
  server: NetServer,
  o: ConnectionCapOptions,
  counters: Pick<GuardCounters, 'refusedGlobal' | 'refusedPerSource' | 'idleClosed'> = {
    refusedGlobal: 0,
    refusedPerSource: 0,
    idleClosed: 0,
  },
  refuse: (kind: string, fields: Record<string, unknown>) => void = refuser(o),
): { open: () => number; counters: Pick<GuardCounters, 'refusedGlobal' | 'refusedPerSource' | 'idleClosed'> } {
  const perSource = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket: Socket) => {
    const source = socket.remoteAddress ?? '?';
    const n = perSource.get(source) ?? 0;
    if (open >= o.maxConnections) {
      counters.refusedGlobal++;
      refuse('connection refused: service at its connection cap', { remote: source, cap: o.maxConnections });
      socket.destroy();
      return;
    }
    if (n >= o.maxPerSource) {
      counters.refusedPerSource++;
      refuse('connection refused: too many connections from one address', { remote: source, cap: o.maxPerSource });
      socket.destroy();
      return;
    }
    open++;
    perSource.set(source, n + 1);
    // On a TLS server the idle timer starts once the handshake is done: set here on the raw socket, it
    // would replace the handshake timeout's timer, and a client that never says hello would be held for
    // the whole idle time instead.
    if (o.idleTimeoutMs > 0 && !(server instanceof TlsServer)) {
      socket.setTimeout(o.idleTimeoutMs, () => {
        counters.idleClosed++;
        socket.destroy();
      });
    }
    socket.once('close', () => {
      open--;
      const left = (perSource.get(source) ?? 1) - 1;
      if (left <= 0) perSource.delete(source);
      else perSource.set(source, left);
    });
  });
  if (o.idleTimeoutMs > 0 && server instanceof TlsServer) {
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.setTimeout(o.idleTimeoutMs, () => {
        counters.idleClosed++;
        socket.destroy();
      });
    });
  }
  return { open: () => open, counters };
}

function refuser(o: { name: string; log: Logger }): (kind: string, fields: Record<string, unknown>) => void {
  const refusals = new RefusalLog();
  return (kind, fields) =>
    refusals.note(kind, Date.now(), (suppressed) =>
      o.log.warn(`${o.name}: ${kind}`, { ...fields, ...(suppressed > 0 ? { suppressedInLastWindow: suppressed } : {}) }),
    );
}
