// SPDX-License-Identifier: UNLICENSED
// A TLS socket as a tunnel session's transport, the same at both ends: writes gathered with cork, the
// unsent bytes from the socket's buffer, the kernel's receive backlog through the addon (when asked),
// and the socket's events fed to the session with the reasons each end gives them. I/O: wired by the
// agent's tunnel client and the headend, never imported by a core.
import type { TLSSocket } from 'node:tls';
import { unreadBytesProbe } from '../native/socket-options.js';
import type { TunnelSession, TunnelTransport } from './session.js';

export interface TlsTransportOptions {
  /** How long a half-closed socket (after a bye) may linger before it is destroyed. */
  readonly endGraceMs: number;
  /** Measure the kernel receive backlog for the session's rx-backlog drops (needs the addon). */
  readonly probeUnread?: boolean;
}

export function tlsTransport(socket: TLSSocket, o: TlsTransportOptions): TunnelTransport {
  socket.setNoDelay(true);
  return {
    write(chunks) {
      if (socket.destroyed) return;
      if (chunks.length === 1) {
        socket.write(chunks[0] as Buffer);
        return;
      }
      socket.cork();
      for (const c of chunks) socket.write(c);
      socket.uncork();
    },
    unsentBytes: () => socket.writableLength,
    unreadBytes: o.probeUnread ? unreadBytesProbe(socket) : undefined,
    end() {
      socket.end();
      setTimeout(() => socket.destroy(), o.endGraceMs).unref();
    },
    destroy() {
      socket.destroy();
    },
    exportKeyingMaterial: (length, label, context) => socket.exportKeyingMaterial(length, label, context),
  };
}

/** Why a session ended, in each end's words (logs, status, metrics labels). */
export interface SocketCloseReasons {
  error(e: NodeJS.ErrnoException): string;
  /** The peer half-closed. */
  readonly end: string;
  /** The socket closed under the session. */
  readonly close: string;
}

/** Feeds `socket`'s reads, drains and endings to `session`. */
export function feedSession(socket: TLSSocket, session: TunnelSession, reasons: SocketCloseReasons): void {
  socket.on('data', (chunk: Buffer) => session.receive(chunk));
  socket.on('drain', () => session.drain());
  socket.on('error', (e: NodeJS.ErrnoException) => session.close(reasons.error(e)));
  socket.on('end', () => session.close(reasons.end));
  socket.on('close', () => session.close(reasons.close));
}
