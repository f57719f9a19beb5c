// SPDX-License-Identifier: UNLICENSED
// The EST server's HTTPS side (TLS 1.3): owns the socket, reads what TLS established about the client
// (its chain, whether it verified), bounds the request body and writes back the response the EST service
// decided. No decisions here.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { EST_MAX_BODY_BYTES, EST_PATH_PREFIX } from '../../shared/est/protocol.js';
import type { EstClient, EstHandler, EstResponse } from '../core/est-service.js';

export interface EstHttpsOptions {
  readonly host: string;
  readonly port: number;
  /** PEM: the server certificate (chain) and key. */
  readonly cert: string;
  readonly key: string;
  /** PEM: every CA a client certificate may chain to, so TLS can complete and verify the chain. */
  readonly clientCas: readonly string[];
}

export interface EstServer {
  /** https://host:port/.well-known/est */
  readonly url: string;
  readonly port: number;
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
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > EST_MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, r: EstResponse): void {
  res.writeHead(r.status, { 'Content-Length': String(Buffer.byteLength(r.body)), ...r.headers });
  res.end(r.body);
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
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      handle({
        method: req.method ?? '',
        url: req.url ?? '/',
        contentType: req.headers['content-type'],
        client: clientOf(socket),
        readBody: () => readBody(req),
      }).then(
        (r) => send(res, r),
        () => res.destroy(),
      );
    },
  );
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
