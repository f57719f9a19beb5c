// SPDX-License-Identifier: UNLICENSED
// The agent's tunnel client as its users see it: options, status and counters (tunnel-client.ts builds it).
import type { Logger } from '../../shared/log.js';
import type { Clock, Scheduler } from '../../shared/ports.js';
import type { AqmOptions } from '../../shared/tunnel/codel.js';
import type { ChannelTiming } from '../../shared/tunnel/datagram/channel.js';
import type { EgressAqmState } from '../../shared/tunnel/egress-queue.js';
import type { BackoffOptions } from '../core/backoff.js';
import type { TunnelIdentity, TunnelLink, TunnelState } from '../core/ports.js';
import type { LaneStatus } from './datagram-lanes.js';

/** The identity's CA is the DC CA the headend must chain to: no system roots are used. */
export type { TunnelIdentity, TunnelState };

export interface TunnelClientOptions {
  /** tls://host:port, tried in order for failover; port defaults to 443. */
  headends: readonly URL[];
  getIdentity: () => Promise<TunnelIdentity>;
  hello: { agentVersion: string; site: string; capabilities: readonly string[] };
  keepaliveMs: number;
  deadAfterMs: number;
  backoff: BackoffOptions;
  sendQueueFrames: number;
  log: Logger;
  /** Source address for the outbound socket. */
  localAddress?: string;
  /** Unsent bytes the socket may hold before frames wait in the queue; default 64 KiB. */
  maxBufferedBytes?: number;
  /** CoDel on the send queue; default 5 ms target, 100 ms interval. */
  aqm?: AqmOptions;
  /** TCP connect + TLS handshake + hello must finish within this; default deadAfterMs. */
  connectTimeoutMs?: number;
  /** Highest tunnel protocol version offered by ALPN (default 2); 1 rolls back to v1 framing. */
  maxProtocol?: 1 | 2;
  /** Offer `offload` on a v2 session: super-frames cross as OFFLOAD records both ways (default off). */
  offload?: boolean;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
  /** The session's time; default the real monotonic clock and timers. */
  clock?: Clock;
  scheduler?: Scheduler;
  /** The datagram data channel (docs/datagram.md); off unless enabled, then at the port the headend offers. */
  /** `lanes`: how many lanes in all to ask the headend for (docs/datagram.md), each further one a worker thread; default 1. */
  datagram?: { enabled: boolean; port?: number; timing?: Partial<ChannelTiming>; sendThread?: boolean; lanes?: number };
}

export type TunnelCounters = {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames dropped at the head of the full send queue (its memory bound). */
  queueOverflowDrops: number;
  /** Frames dropped by CoDel under a standing send queue (congestion). */
  queueAqmDrops: number;
  /** Frames offered while the tunnel was not up. */
  notUpDrops: number;
  decodeDrops: Record<string, number>;
};

export type TunnelStatus = {
  state: TunnelState;
  headend: string | null;
  vni: number | null;
  sessionId: string | null;
  rttMs: number | null;
  /** Wall-clock ms (Date.now()) when the current state began. */
  sinceMs: number;
  reconnects: number;
  lastError: string | null;
  queuedFrames: number;
  /** The send queue's CoDel state (of the current session; zeros when none). */
  aqm: EgressAqmState;
  /** The current session resumed a TLS 1.3 ticket (no certificate work on either end). */
  tlsResumed: boolean;
  /** The session's tunnel protocol version (ALPN) and whether it negotiated `offload`; null while not up. */
  protocol: { version: 1 | 2; offload: boolean } | null;
  /** Where this side's data leaves: datagrams, or the TLS connection (also when no channel was offered). */
  transport: 'datagram' | 'tls';
  datagram: {
    tx: 'datagram' | 'tls';
    reason: string;
    datagramsIn: number;
    datagramsOut: number;
    switches: number;
    /** Frames sent as two datagrams (HEAD/TAIL) because they exceeded the path MTU. */
    splits: number;
    /** Datagrams that carried several small frames (to a headend that unpacks them). */
    bundles: number;
    /** The largest outer packet the path has carried (its search starts at 1280). */
    plpmtu: number;
    /** Path MTU black holes found (the size stopped getting through; searched again). */
    blackHoles: number;
    /** The socket: `native` (the addon's batched one, with UDP GSO/GRO) or `dgram`, and datagrams the kernel did not take. */
    socket: { kind: string; sendDrops: number; gso: boolean; gro: boolean; sendThread: boolean } | null;
    /** The session's further lanes, each on a worker thread of its own (none unless `datagram_lanes` > 1 and the headend offered them). */
    lanes: LaneStatus[];
  } | null;
  counters: TunnelCounters;
};

export type StateInfo = { headend?: string; reason?: string };

export interface TunnelClient extends TunnelLink {
  status(): TunnelStatus;
}
