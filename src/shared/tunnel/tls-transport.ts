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
      // Ended by the peer, its close still queued (feedSession's defer): nothing more to send.
      if (socket.destroyed || socket.writableEnded) return;
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

/**
 * Feeds `socket`'s reads, drains and endings to `session`. `defer`: where the session's close runs when
 * the peer ended it (the headend paces thousands of them; the agent closes at once). Deferred, the
 * socket is half-open until then: otherwise node would answer the peer's FIN at once with its own TLS
 * shutdown and free the connection (most of a close's cost), all in the same turn for every socket the
 * kernel reported, and the session's close (which destroys the socket) would come after.
 */
export function feedSession(
  socket: TLSSocket,
  session: TunnelSession,
  reasons: SocketCloseReasons,
  defer?: (fn: () => void) => void,
): void {
  if (defer) socket.allowHalfOpen = true;
  else defer = (fn) => fn();
  socket.on('data', (chunk: Buffer) => session.receive(chunk));
  socket.on('drain', () => session.drain());
  socket.on('error', (e: NodeJS.ErrnoException) => {
    const reason = reasons.error(e);
    defer(() => session.close(reason));
  });
  socket.on('end', () => defer(() => session.close(reasons.end)));
  socket.on('close', () => defer(() => session.close(reasons.close)));
}
