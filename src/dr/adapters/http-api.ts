// SPDX-License-Identifier: UNLICENSED
// The drill API's HTTP listener: JSON in and out, bodies capped, routes decided by core/api.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/log.js';
import { routeDrillApi, type DrillOps } from '../core/api.js';

const MAX_BODY = 64 * 1024;

export async function serveDrillApi(o: {
  host: string;
  port: number;
  ops: DrillOps;
  log: Logger;
}): Promise<{ address: AddressInfo; close(): Promise<void> }> {
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
      routeDrillApi(o.ops, req.method ?? 'GET', req.url ?? '/', body).then(
        (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body) + '\n'),
        (e: unknown) => {
          o.log.error('drill API failure', { error: String(e) });
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
