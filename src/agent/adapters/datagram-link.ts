// SPDX-License-Identifier: UNLICENSED
// The agent's datagram channel for one tunnel session (docs/datagram.md): a connected UDP socket to the
// headend's datagram port, opened once the hello-ack offers it, closed with the session. Outbound only:
// the agent sends first (its probe), and keeps its NAT mapping alive while it carries data by datagrams.
// Its frames leave by datagrams while the path monitor says the path works, else by the TLS session;
// frames arriving by either path are the session's. With lanes (`datagram_lanes`, docs/datagram.md) the
// headend's further peer ids each get a worker thread of their own (datagram-lanes.ts), and each frame
// takes the lane its inner flow hashes to while that lane's path works.
import { lookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import type { Offload } from '../../shared/l2/tso-segment.js';
import type { Logger } from '../../shared/log.js';
import { installDatagramAead } from '../../shared/native/datagram-aead.js';
import { openUdpEndpoint, type UdpEndpoint } from '../../shared/native/udp-endpoint.js';
import type { Clock } from '../../shared/ports.js';
import {
  BUNDLE_CAPABILITY,
  DatagramChannel,
  exportKeyBlock,
  SPLIT_CAPABILITY,
  type ChannelTiming,
  type DgTx,
} from '../../shared/tunnel/datagram/channel.js';
import { clampMss, mssFor } from '../../shared/tunnel/datagram/mss-clamp.js';
import type { AqmOptions } from '../../shared/tunnel/codel.js';
import { laneAsk, parseLaneOffer, pickLane } from '../../shared/tunnel/datagram/lanes.js';
import type { TunnelSession, TunnelTransport } from '../../shared/tunnel/session.js';
import { LanePressure, startLanes, type Lane, type LaneStatus } from './datagram-lanes.js';

export const DATAGRAM_CAPABILITY = 'datagram';
/**
 * What the agent's hello asks for: the channel, HEAD/TAIL pairs for frames above the path MTU, bundles of
 * small frames, and `lanes` lanes in all when more than one.
 */
export function datagramHello(lanes = 1): string[] {
  const ask = laneAsk(lanes);
  return [DATAGRAM_CAPABILITY, SPLIT_CAPABILITY, BUNDLE_CAPABILITY, ...(ask !== null ? [ask] : [])];
}
/** Socket buffers of the datagram socket: room for the bursts a busy loop leaves in the kernel (capped by net.core.rmem_max). */
const DG_SOCKET_BUFFER = 2 * 1024 * 1024;
const CIPHER = 'AES-256-GCM';
const TICK_MS = 100;

/** The headend's offer in its hello-ack capabilities: `datagram:<peer id>:<udp port>` (and `dg-split`, `dg-bundle`), or null. */
export function datagramOffer(capabilities: readonly string[]): DatagramOffer | null {
  for (const c of capabilities) {
    const m = /^datagram:(\d{1,8}):(\d{1,5})$/.exec(c);
    if (!m) continue;
    const peerId = Number(m[1]);
    const port = Number(m[2]);
    if (peerId >= 1 && peerId < 0xffffff && port >= 1 && port <= 65_535)
      return {
        peerId,
        port,
        splits: capabilities.includes(SPLIT_CAPABILITY),
        bundles: capabilities.includes(BUNDLE_CAPABILITY),
        laneIds: parseLaneOffer(capabilities).filter((id) => id !== peerId),
      };
  }
  return null;
}

export interface DatagramOffer {
  peerId: number;
  port: number;
  /** The headend rebuilds HEAD/TAIL pairs. */
  splits: boolean;
  /** The headend unpacks BUNDLE datagrams. */
  bundles: boolean;
  /** The peer ids of the session's further lanes (none from a headend without lanes). */
  laneIds: readonly number[];
}

/** What the link needs of its session: a TunnelSession, or a lane worker's stand-in for it. */
export type DatagramSessionPort = Pick<TunnelSession, 'receiveFrames' | 'sendControl' | 'datagramTx' | 'datagramTxOffload'>;

export interface DatagramLink {
  readonly tx: DgTx;
  readonly reason: string;
  readonly counters: DatagramChannel['counters'];
  /** The socket: 'native' (batched, GSO/GRO) or 'dgram', and datagrams the kernel did not take; null before it is open. */
  socket(): { kind: string; sendDrops: number; gso: boolean; gro: boolean; sendThread: boolean } | null;
  /** Each further lane's state and counters (empty without lanes). */
  lanes(): LaneStatus[];
  /** The largest outer packet the path to the headend has carried. */
  readonly plpmtu: number;
  /** Times that size stopped getting through (a path MTU black hole) and the search began again. */
  readonly blackHoles: number;
  /**
   * Lowers the MSS of TCP SYNs crossing the tunnel (both ways, in place) so each segment fits one datagram;
   * only once the path has carried datagrams: a site whose UDP is blocked keeps its full MSS on TLS.
   */
  clamp(frames: readonly Buffer[]): void;
  close(): void;
}

export interface DatagramLinkOptions {
  session: DatagramSessionPort;
  /** The TLS session's exporter derives the keys; a lane worker is handed its key block instead. */
  keys: TunnelTransport | Buffer;
  /** The headend host the TLS connection reached (so UDP goes to the same machine behind DNS). */
  host: string;
  offer: DatagramOffer;
  /** Overrides the offered port (a site that must send UDP elsewhere, a test's relay). */
  port?: number;
  localAddress?: string;
  /** The socket's sends leave the event loop for a thread of their own (udp-endpoint.ts). */
  sendThread?: boolean;
  /** Starts the offer's further lanes, each in a worker thread (datagram-lanes.ts); without it, one lane. */
  lanes?: boolean;
  /** CoDel's settings for the queues between the loop and the lanes (the agent's `aqm_*`). */
  aqm?: AqmOptions;
  clock: Clock;
  log: Logger;
  timing?: Partial<ChannelTiming>;
  changed?: (tx: DgTx, reason: string) => void;
  /** The session's datagramTx was set or cleared (its data moved to or from datagrams). */
  txChanged?: () => void;
  /** A lane has too much still to take (true), or every lane has room again (false); false at close too. */
  backpressure?: (full: boolean) => void;
}

export function openDatagramLink(o: DatagramLinkOptions): DatagramLink | null {
  const exporter = Buffer.isBuffer(o.keys) ? undefined : o.keys.exportKeyingMaterial;
  if (exporter === undefined && !Buffer.isBuffer(o.keys)) return null;
  installDatagramAead(o.log);
  const keyBlock = exporter !== undefined ? exportKeyBlock(exporter, CIPHER, o.offer.peerId) : (o.keys as Buffer);
  const ipv6 = isIPv6(o.host);
  let ep: UdpEndpoint | null = null;
  const channel = new DatagramChannel(
    {
      role: 'agent',
      cipher: CIPHER,
      peerId: o.offer.peerId,
      keyBlock,
      ipv6,
      peerSplits: o.offer.splits,
      peerBundles: o.offer.bundles,
      alloc: (size) => (ep !== null ? ep.alloc(size) : Buffer.allocUnsafe(size)),
      ...(o.timing ? { timing: o.timing } : {}),
    },
    o.clock.now(),
  );
  keyBlock.fill(0);
  let closed = false;
  const lanes: Lane[] =
    o.lanes === true && exporter !== undefined && o.offer.laneIds.length > 0
      ? startLanes({
          ids: o.offer.laneIds,
          keyBlock: (id) => exportKeyBlock(exporter, CIPHER, id),
          host: o.host,
          port: o.port ?? o.offer.port,
          splits: o.offer.splits,
          bundles: o.offer.bundles,
          ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
          ...(o.sendThread === true ? { sendThread: true } : {}),
          ...(o.timing ? { timing: o.timing } : {}),
          ...(o.aqm ? { aqm: o.aqm } : {}),
          log: o.log,
          deliver: (frames) => {
            if (!closed) o.session.receiveFrames(frames);
          },
        })
      : [];
  const pressure = new LanePressure(lanes, (full) => o.backpressure?.(full));
  const onDatagram = (msg: Buffer): void => {
    if (closed) return;
    const r = channel.receive(msg, o.clock.now());
    // An answered probe moves tx at once, not at the next tick.
    setTx();
    if (r.kind === 'frame') inbound.push(r.frame);
    else if (r.kind === 'frames') for (const f of r.frames) inbound.push(f);
    else if (r.kind === 'ping' && r.answer) send(r.answer);
  };
  // Frames of one read batch reach the session together, as a TLS read's do.
  const inbound: Buffer[] = [];
  const onBatchEnd = (): void => {
    if (inbound.length === 0 || closed) return;
    o.session.receiveFrames(inbound.splice(0));
  };
  const send = (d: Buffer): void => {
    if (ep !== null && !closed) ep.send(d);
  };
  const port = o.port ?? o.offer.port;
  void (async () => {
    const host = isIP(o.host) ? o.host : (await lookup(o.host, { family: ipv6 ? 6 : 4 })).address;
    const e = await openUdpEndpoint({
      host: o.localAddress ?? (ipv6 ? '::' : '0.0.0.0'),
      port: 0,
      what: 'datagram channel',
      rcvbuf: DG_SOCKET_BUFFER,
      sndbuf: DG_SOCKET_BUFFER,
      pmtuProbe: true,
      ...(o.sendThread === true ? { sendThread: true } : {}),
      connect: { host, port },
      onDatagram,
      onBatchEnd,
      // A refused or unreachable port: the path monitor already treats the silence as a dark path.
      onError: (err) => o.log.debug('datagram socket error', { error: err.message }),
    });
    if (closed) return void e.close();
    ep = e;
    o.log.debug('datagram socket', { kind: e.kind, port: e.port, headend: `${host}:${port}`, sendThread: e.stats().sendThread });
  })().catch((err: unknown) =>
    o.log.warn('datagram channel not opened: frames stay in TLS', { error: err instanceof Error ? err.message : String(err) }),
  );
  // The session sends by datagrams only while the path monitor says they work.
  const setTx = (): void => {
    const next = channel.tx === 'datagram' ? txFrame : null;
    if (o.session.datagramTx === next) return;
    o.session.datagramTx = next;
    // Super-frames cut into datagrams here only when that is one call into C; else the TAP's kernel cuts them.
    o.session.datagramTxOffload = next !== null && channel.sealsSuperFrames ? txOffload : null;
    o.txChanged?.();
  };
  const txFrame = (frame: Uint8Array): boolean => {
    if (channel.tx !== 'datagram' || ep === null) return false;
    const lane = pickLane(frame, lanes);
    if (lane?.up === true) return pressure.sent(lane, lane.send(frame));
    const sent = channel.sealFrame(frame, o.clock.now(), send);
    if (channel.bundlePending) flushSoon();
    return sent;
  };
  // Small frames of this task wait in a bundle until it ends: what the socket's own flush waits for too.
  let flushQueued = false;
  const flushBundle = (): void => {
    flushQueued = false;
    channel.flushBundle(send);
  };
  const flushSoon = (): void => {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(flushBundle);
  };
  const txOffload = (off: Offload, frame: Uint8Array): number => {
    if (channel.tx !== 'datagram' || ep === null) return 0;
    const lane = pickLane(frame, lanes);
    if (lane?.up === true) return pressure.sent(lane, lane.sendSuperFrame(off, frame));
    return channel.sealSuperFrame(off, frame, o.clock.now(), send);
  };
  const tick = setInterval(() => {
    if (ep === null) return;
    const t = channel.tick(o.clock.now());
    for (const d of t.send) send(d);
    if (t.changed) {
      // The session sends by datagrams only while the path monitor says they work.
      setTx();
      o.session.sendControl({ type: 'dg-state', tx: channel.tx, reason: channel.reason });
      o.log.info('tunnel transport', { tx: channel.tx, reason: channel.reason });
      o.changed?.(channel.tx, channel.reason);
    }
  }, TICK_MS);
  tick.unref();
  return {
    get tx() {
      return channel.tx;
    },
    get reason() {
      return channel.reason;
    },
    counters: channel.counters,
    socket() {
      if (ep === null) return null;
      const st = ep.stats();
      return { kind: ep.kind, sendDrops: st.dropped, gso: st.gso, gro: st.gro, sendThread: st.sendThread };
    },
    lanes: () => lanes.map((l) => l.status()),
    get plpmtu() {
      return channel.plpmtu;
    },
    get blackHoles() {
      return channel.blackHoles;
    },
    clamp(frames) {
      if (!channel.everUp) return;
      const v4 = mssFor(channel.plpmtu, ipv6, 0, false);
      const v6 = mssFor(channel.plpmtu, ipv6, 0, true);
      for (const f of frames) clampMss(f, v4, v6);
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      o.session.datagramTx = null;
      o.session.datagramTxOffload = null;
      o.txChanged?.();
      channel.destroy();
      pressure.release();
      for (const l of lanes) l.close();
      void ep?.close();
    },
  };
}
