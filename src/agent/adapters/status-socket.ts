// SPDX-License-Identifier: UNLICENSED
// Local status endpoint: a unix socket that answers every connection with one JSON document and closes.
// It is the agent's only listening socket, and it is not reachable from any network.
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { ConnectorError, isErrno } from '../../shared/errors.js';
import type { StatusServer } from '../core/ports.js';

export type { StatusServer };

export async function serveStatus(path: string, snapshot: () => unknown): Promise<StatusServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    unlinkSync(path); // a socket left by a killed agent
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
  const server: Server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.end(JSON.stringify(snapshot()) + '\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The bind happens inside listen(): with this umask the socket is never, even briefly, world-usable.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
  // The socket's mode would come from the process umask: root only, whatever the umask. The status
  // shows the unit's LAN (MACs, neighbours): not for every local user.
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}

export function fetchStatus(path: string, timeoutMs = 3000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = createConnection(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ConnectorError('CK_ERR_IO', `no answer from the agent on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', (e) => {
      clearTimeout(timer);
      const hint = isErrno(e, 'ENOENT') || isErrno(e, 'ECONNREFUSED') ? ' (is the agent running? see `logread -e connector`)' : '';
      reject(new ConnectorError('CK_ERR_IO', `cannot reach the agent status socket ${path}: ${e.message}${hint}`, { cause: e }));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(new ConnectorError('CK_ERR_IO', `the agent sent malformed status`, { cause: e }));
      }
    });
  });
}
