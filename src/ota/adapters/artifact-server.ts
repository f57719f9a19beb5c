// SPDX-License-Identifier: UNLICENSED
// A small static HTTPS server for release artifacts with single-range support, so devices can resume.
// Any HTTPS server with Range works for devices; this one exists for the lab and for small installs.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import type { Logger } from '../../shared/log.js';
import { parseRange } from '../core/range.js';

export interface ArtifactServerOptions {
  readonly dir: string;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Bytes per second per response; 0 = unthrottled. For tests that must interrupt a download. */
  readonly throttleBytesPerS?: number;
}

export interface ArtifactServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startArtifactServer(o: ArtifactServerOptions): Promise<ArtifactServer> {
  const root = resolve(o.dir);
  const server: Server = createServer({ cert: o.cert, key: o.key, minVersion: 'TLSv1.2' }, (req, res) => {
    void (async () => {
      const started = Date.now();
      const url = new URL(req.url ?? '/', 'https://x');
      const file = resolve(join(root, decodeURIComponent(url.pathname)));
      const range = req.headers.range;
      const done = (status: number, bytes: number): void =>
        o.log.info('artifact request', { method: req.method, path: url.pathname, range, status, bytes, ms: Date.now() - started });
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return done(405, 0);
      }
      if (!file.startsWith(root + sep)) {
        res.writeHead(404).end();
        return done(404, 0);
      }
      // Missing, unreadable or not a regular file: 404 alike, so the reply says nothing about the tree.
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) {
        res.writeHead(404).end();
        return done(404, 0);
      }
      const size = st.size;
      const r = parseRange(range, size);
      if (r.kind === 'unsatisfiable') {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return done(416, 0);
      }
      const start = r.kind === 'partial' ? r.start : 0;
      const end = r.kind === 'partial' ? r.end : size - 1;
      const headers: Record<string, string | number> = {
        'accept-ranges': 'bytes',
        'content-type': 'application/octet-stream',
        'content-length': end - start + 1,
      };
      if (r.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${size}`;
      const status = r.kind === 'partial' ? 206 : 200;
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return done(status, 0);
      }
      const stream = createReadStream(file, { start, end, highWaterMark: 16 * 1024 });
      let sent = 0;
      const rate = o.throttleBytesPerS ?? 0;
      stream.on('data', (chunk) => {
        sent += chunk.length;
        if (rate > 0) {
          stream.pause();
          setTimeout(() => stream.resume(), (chunk.length / rate) * 1000);
        }
        res.write(chunk);
      });
      stream.on('end', () => {
        res.end();
        done(status, sent);
      });
      stream.on('error', () => res.destroy());
      res.on('close', () => {
        if (!res.writableFinished) {
          stream.destroy();
          done(status, sent);
        }
      });
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
