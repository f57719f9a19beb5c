// SPDX-License-Identifier: UNLICENSED
// What the headend core asks of the datagram channel (adapters/datagram-server.ts implements it).
import type { HelloMessage } from '../../shared/tunnel/control.js';
import type { TunnelSession, TunnelTransport } from '../../shared/tunnel/session.js';

export interface DatagramPort {
  /** The hello-ack capabilities that offer the channel to a session whose hello asked for it, or null. */
  offer(sessionId: string, hello: HelloMessage): readonly string[] | null;
  /** The offered session is up: its channel starts; `changed` is told every switch of this side's path. */
  attach(sessionId: string, tunnel: TunnelSession, transport: TunnelTransport, changed: (tx: string, reason: string) => void): void;
  /** The session ended: keys, peer id and address go with it. */
  detach(sessionId: string): void;
  /** Where the session's data toward the device leaves now; null when it has no channel. */
  transportOf(sessionId: string): 'datagram' | 'tls' | null;
  /** The device's own data path changed (its dg-state). */
  peerState(sessionId: string, tx: 'datagram' | 'tls'): void;
}
