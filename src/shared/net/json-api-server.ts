// SPDX-License-Identifier: UNLICENSED
// A small JSON-over-HTTP listener for the datacentre services the console talks to (the drill service,
// the rollout controller): bodies capped and parsed, routes decided by the caller's pure router, a router
// that throws answers 500 and is logged, never a crash. Meant for loopback: it has no authentication of
// its own; the console (TLS, logins, roles) is the door in front of it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';

const MAX_BODY = 64 * 1024;

export interface JsonApiResponse {
  status: number;
  body: unknown;
}

export type JsonApiRouter = (method: string, path: string, body: unknown) => Promise<JsonApiResponse>;

export interface JsonApiServer {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function serveJsonApi(o: {
  host: string;
  port: number;
  route: JsonApiRouter;
  log: Logger;
  what: string;
}): Promise<JsonApiServer> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: 'CK_ERR_USAGE', message: 'body is not JSON' }));
        return;
      }
      o.route(req.method ?? 'GET', req.url ?? '/', body).then(
        (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body) + '\n'),
        (e: unknown) => {
          o.log.error(`${o.what} API failure`, { error: String(e) });
          res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal' }));
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
