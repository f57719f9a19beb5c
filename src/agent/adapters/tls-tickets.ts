// SPDX-License-Identifier: UNLICENSED
// The agent's TLS 1.3 session tickets, per headend, for the certificate each was issued to (memory only;
// they survive reconnects, not a restart of the agent): a reconnect resumes the ticket and skips the
// certificate signature and verification on both ends. A renewed certificate starts a full handshake,
// and a refusal forgets the ticket.
import type { TLSSocket } from 'node:tls';

export class TicketCache {
  readonly #tickets = new Map<string, { cert: string; session: Buffer }>();

  /** The `session` option for a connection to `headend` with `cert`, if a ticket for both is held. */
  sessionFor(headend: string, cert: string): { session: Buffer } | Record<string, never> {
    const t = this.#tickets.get(headend);
    return t && t.cert === cert ? { session: t.session } : {};
  }

  /** Keeps the latest ticket `socket` receives. */
  watch(socket: TLSSocket, headend: string, cert: string): void {
    socket.on('session', (session: Buffer) => this.#tickets.set(headend, { cert, session }));
  }

  forget(headend: string): void {
    this.#tickets.delete(headend);
  }
}
