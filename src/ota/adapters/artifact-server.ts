// SPDX-License-Identifier: UNLICENSED
// A small static HTTPS server for release artifacts with single-range support, so devices can resume.
// Any HTTPS server with Range works for devices; this one exists for the lab and for small installs.
// What to answer is core/artifact-response.ts's; this file stats, streams, throttles and logs.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';
import type { Logger } from '../../shared/log.js';
import { guardServer, safeHandler, tlsOptions, type ServiceGuard } from '../../shared/net/service-guard.js';
import {
  artifactAnswer,
  artifactPath,
  methodAllowed,
  METHOD_NOT_ALLOWED,
  NOT_FOUND,
  type ArtifactAnswer,
} from '../core/artifact-response.js';

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
  /** Its refusals, for the metrics listener. */
  readonly guard: ServiceGuard;
  close(): Promise<void>;
}

export async function startArtifactServer(o: ArtifactServerOptions): Promise<ArtifactServer> {
  const root = await realpath(resolve(o.dir));
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://x');
    } catch {
      res.writeHead(400, { connection: 'close' });
      res.end();
      return;
    }
    const range = req.headers.range;
    const done = (status: number, bytes: number): void =>
      o.log.info('artifact request', { method: req.method, path: url.pathname, range, status, bytes, ms: Date.now() - started });
    const decide = async (): Promise<{ answer: ArtifactAnswer; file?: string }> => {
      if (!methodAllowed(req.method)) return { answer: METHOD_NOT_ALLOWED };
      const named = artifactPath(root, url.pathname);
      if (named === undefined) return { answer: NOT_FOUND };
      try {
        // Links are resolved before the check: a symbolic link inside the directory pointing out of it
        // serves nothing.
        const file = await realpath(named);
        if (!file.startsWith(root + sep)) return { answer: NOT_FOUND };
        const st = await stat(file);
        return st.isFile() ? { answer: artifactAnswer(req.method, st.size, range), file } : { answer: NOT_FOUND };
      } catch {
        return { answer: NOT_FOUND };
      }
    };
    const { answer: a, file } = await decide();
    res.writeHead(a.status, a.headers);
    if (a.kind === 'status' || a.range === undefined || file === undefined) {
      res.end();
      return done(a.status, 0);
    }
    const { start, end } = a.range;
    const status = a.status;
    const stream = createReadStream(file, { start, end, highWaterMark: 64 * 1024 });
    let sent = 0;
    const rate = o.throttleBytesPerS ?? 0;
    // pipeline() waits for the client to read (back-pressure): a client that never reads holds one
    // stream's buffer, not the whole file.
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        if (rate > 0) setTimeout(() => cb(null, chunk), (chunk.length / rate) * 1000);
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(stream, counted, res);
    } catch {
      // the client went away, or the file could not be read: nothing more to send
    }
    done(status, sent);
  };
  const server: Server = createServer(
    { cert: o.cert, key: o.key, minVersion: 'TLSv1.2', ...tlsOptions() },
    safeHandler('artifact server', o.log, handler),
  );
  const guard = guardServer(server, { name: 'artifact-server', log: o.log });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    port,
    guard,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
