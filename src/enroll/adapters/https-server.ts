// SPDX-License-Identifier: UNLICENSED
// The EST server's HTTPS side (TLS 1.3): owns the socket, reads what TLS established about the client
// (its chain, whether it verified), bounds the request body and writes back the response the EST service
// decided. No decisions here.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { EST_MAX_BODY_BYTES, EST_PATH_PREFIX } from '../../shared/est/protocol.js';
import type { Logger } from '../../shared/log.js';
import { guardServer, safeHandler, tlsOptions, type ServiceGuard } from '../../shared/net/service-guard.js';
import type { EstClient, EstHandler, EstResponse } from '../core/est-service.js';

export interface EstHttpsOptions {
  readonly host: string;
  readonly port: number;
  /** PEM: the server certificate (chain) and key. */
  readonly cert: string;
  readonly key: string;
  /** PEM: every CA a client certificate may chain to, so TLS can complete and verify the chain. */
  readonly clientCas: readonly string[];
  readonly log: Logger;
}

export interface EstServer {
  /** https://host:port/.well-known/est */
  readonly url: string;
  readonly port: number;
  /** Its refusals, for the metrics listener. */
  readonly guard: ServiceGuard;
  /** The metrics listener's port, when the config asks for one. */
  readonly metricsPort?: number;
  close(): Promise<void>;
}

/** The peer's chain as Node completed it, leaf first. */
function peerChain(socket: TLSSocket): DetailedPeerCertificate[] {
  const out: DetailedPeerCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (c && c.raw && !out.some((x) => x.fingerprint256 === c?.fingerprint256)) {
    out.push(c);
    c = c.issuerCertificate;
  }
  return out;
}

function clientOf(socket: TLSSocket): EstClient {
  const err = socket.authorizationError;
  return {
    chain: peerChain(socket).map((c) => c.raw),
    authorized: socket.authorized,
    authorizationError: err === undefined || err === null ? undefined : String(err),
    remote: socket.remoteAddress ?? '',
  };
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (b: Buffer): void => {
      size += b.length;
      if (size > EST_MAX_BODY_BYTES) {
        // Stop reading, answer 413, then close (send() sees the flag): destroying the request here would
        // take the answer with it.
        req.off('data', onData);
        req.pause();
        oversize.add(req);
        resolve(undefined);
        return;
      }
      parts.push(b);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** Requests whose body passed the limit: their connection closes once the 413 is out. */
const oversize = new WeakSet<IncomingMessage>();

function send(req: IncomingMessage, res: ServerResponse, r: EstResponse): void {
  const close = oversize.has(req);
  res.writeHead(r.status, { 'Content-Length': String(Buffer.byteLength(r.body)), ...r.headers, ...(close ? { Connection: 'close' } : {}) });
  res.end(r.body, () => {
    if (close) req.socket.destroy();
  });
}

export async function startEstHttpsServer(o: EstHttpsOptions, handle: EstHandler): Promise<EstServer> {
  const server: Server = createServer(
    {
      cert: o.cert,
      key: o.key,
      ca: [...o.clientCas],
      requestCert: true,
      // cacerts and csrattrs are public (RFC 7030 section 4.1.1); enrollment checks the chain itself.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      ...tlsOptions(),
    },
    safeHandler('est', o.log, async (req, res) => {
      const socket = req.socket as TLSSocket;
      const r = await handle({
        method: req.method ?? '',
        url: req.url ?? '/',
        contentType: req.headers['content-type'],
        client: clientOf(socket),
        readBody: () => readBody(req),
      });
      send(req, res, r);
    }),
  );
  const guard = guardServer(server, { name: 'est', log: o.log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  return {
    url: `https://${hostForUrl.includes(':') ? `[${hostForUrl}]` : hostForUrl}:${port}${EST_PATH_PREFIX}`,
    port,
    guard,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
