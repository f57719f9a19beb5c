// SPDX-License-Identifier: UNLICENSED
// What a tunnel session (session.ts) is given and what it tells: its transport, its events, its options
// and counters.
import type { Clock, Scheduler } from '../ports.js';
import type { DgStateMessage, HelloAckMessage, HelloMessage } from './control.js';
import type { EgressQueueOptions } from './egress-queue.js';
import type { TunnelSession } from './session.js';

/** What a session needs from its connection (a TLS socket, or an in-memory pipe in tests). */
export interface TunnelTransport {
  /** Writes the buffers in order, as one write where the transport can gather them. */
  write(chunks: readonly Buffer[]): void;
  /** Bytes written but not yet taken by the kernel. */
  unsentBytes(): number;
  /** Bytes waiting unread in the kernel's receive queue; undefined when that cannot be known. */
  readonly unreadBytes: (() => number) | undefined;
  /** Half-closes after what was written, and forces the close after the transport's grace period. */
  end(): void;
  destroy(): void;
  /** TLS exporter (RFC 8446 7.5) of the connection, where there is one: the datagram channel's keys. */
  exportKeyingMaterial?(length: number, label: string, context: Buffer): Buffer;
}

export interface TunnelSessionEvents {
  /** The hello exchange completed: the client got its hello-ack, or the server acked a hello. */
  up(session: TunnelSession): void;
  /**
   * The data frames of one read, in order. The views stay valid after the call (RecordDecoder), the
   * array does not: it is reused for the next read.
   */
  frames(batch: readonly Buffer[]): void;
  /**
   * One OFFLOAD record (v2 with `offload` negotiated): the virtio_net_hdr, unvalidated, and the super-frame.
   * The frames before it were handed on first. Absent: OFFLOAD records are dropped ('offload-unexpected').
   */
  offload?(vnetHdr: Buffer, frame: Buffer): void;
  /** A record, control message or frame dropped, by reason (for counters). */
  drop(reason: string): void;
  closed(reason: string): void;
  /** The peer's datagram-channel state (datagram/channel.ts); only on sessions that negotiated it. */
  dgState?(msg: DgStateMessage): void;
}

interface CommonOptions {
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly egress: EgressQueueOptions;
  /**
   * AQM on the receive side (the headend's): CoDel over the bytes waiting unread in the kernel behind
   * each read (the transport's unreadBytes), since their age is unknown. Absent: none.
   */
  readonly rxAqm?: RxAqmOptions;
  /** Offer (client) or accept (server) the `offload` capability on a v2 session: OFFLOAD records both ways. */
  readonly offload?: boolean;
}

export interface RxAqmOptions {
  /** Unread bytes behind a read that count as a queue above target. */
  readonly targetBytes: number;
  readonly intervalMs: number;
}

export interface ClientSessionOptions extends CommonOptions {
  readonly role: 'client';
  readonly hello: Readonly<Pick<HelloMessage, 'agentVersion' | 'site' | 'capabilities'>>;
  readonly keepaliveMs: number;
  readonly deadAfterMs: number;
}

export interface ServerSessionOptions extends CommonOptions {
  readonly role: 'server';
  /** The answer to a hello: the VNI and session id come from admission, never from the device. */
  readonly ack: Readonly<Omit<HelloAckMessage, 'type'>>;
  /**
   * Decides the VNI once the hello is read (a trunk unit's session names its VLAN in the hello's
   * capabilities); a string is a refusal, sent as an `error` record before the session closes.
   */
  readonly onHello?: (hello: HelloMessage) => Readonly<Pick<HelloAckMessage, 'vni' | 'capabilities'>> | string;
  readonly helloTimeoutMs: number;
}

export type TunnelSessionOptions = ClientSessionOptions | ServerSessionOptions;

export type SessionState = 'hello' | 'up' | 'closed';

export interface SessionCounters {
  framesIn: number;
  /** Ethernet bytes of the data frames received. */
  bytesIn: number;
  /** Data frames dropped by the receive-side AQM under a standing backlog. */
  rxAqmDrops: number;
  /** Data frames (and their Ethernet bytes) that left as datagrams; the rest are the egress queue's. */
  datagramFramesOut: number;
  datagramBytesOut: number;
}
