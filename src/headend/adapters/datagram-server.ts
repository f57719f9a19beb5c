// SPDX-License-Identifier: UNLICENSED
// The headend's datagram port (docs/datagram.md): one UDP socket for every session, a table from peer id
// to session, and each session's channel (shared/tunnel/datagram/channel.ts). The receive order is the
// contract with a hostile internet: a datagram of no live peer id is counted and dropped before any
// crypto, one that is not authentic under its session's keys is counted on that session, and neither
// allocates state, logs or gets an answer. Only an authentic datagram moves the session's address
// (NAT rebinding: the newest authentic source wins, as WireGuard roams).
// A session may have lanes (`dg-lanes`, docs/datagram.md): more peer ids, each with its own keys, replay
// window and path monitor, so the agent can seal and open each on a core of its own. Frames this end sends
// pick a lane by their inner flow (flow-hash.ts), so one flow always takes the same lane and is never
// reordered; frames arriving on any lane are the session's.
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Logger } from '../../shared/log.js';
import { installDatagramAead } from '../../shared/native/datagram-aead.js';
import { openUdpEndpoint, type UdpEndpoint } from '../../shared/native/udp-endpoint.js';
import { parseHeader } from '../../shared/tunnel/datagram/codec.js';
import { laneCount, laneOffer, pickLane } from '../../shared/tunnel/datagram/lanes.js';
import {
  BUNDLE_CAPABILITY,
  DatagramChannel,
  exportKeyBlock,
  SPLIT_CAPABILITY,
  type ChannelTiming,
} from '../../shared/tunnel/datagram/channel.js';
import type { HelloMessage } from '../../shared/tunnel/control.js';
import type { TunnelSession, TunnelTransport } from '../../shared/tunnel/session.js';
import type { DatagramPort } from '../core/headend.js';

export const DATAGRAM_CAPABILITY = 'datagram';
const CIPHER = 'AES-256-GCM';
const TICK_MS = 100;
/** A peer id is not reused for this long after its session ended: a late datagram finds no one. */
const QUARANTINE_MS = 5 * 60_000;
const RCVBUF = 4 * 1024 * 1024;

interface Peer {
  readonly sessionId: string;
  readonly tunnel: TunnelSession;
  channel: DatagramChannel | null;
  /** The session's first peer id (its path state is the session's), or one of its further lanes. */
  readonly primary: boolean;
  /** The primary's further lanes, in the order the offer named them. */
  readonly lanes: Peer[];
  live: boolean;
  address: string | null;
  port: number;
  changed: (tx: string, reason: string) => void;
  /** To the session's latest address. */
  readonly send: (d: Buffer) => void;
  readonly txFrame: (frame: Uint8Array) => boolean;
}

export interface DatagramServer extends DatagramPort {
  readonly port: number;
  /** Drops before a session could be named (not ours, no such peer id), by reason. */
  readonly drops: Readonly<Record<string, number>>;
  /** Datagram counters summed over live sessions, and drops after the peer id was known, by reason. */
  totals(): {
    datagramsIn: number;
    datagramsOut: number;
    bundles: number;
    sessionDrops: Record<string, number>;
    onDatagrams: number;
    sendDrops: number;
  };
  close(): Promise<void>;
}

export async function openDatagramServer(o: {
  host: string;
  port: number;
  log: Logger;
  now: () => number;
  timing?: Partial<ChannelTiming>;
  /** Sends leave the event loop for a thread of the socket's own (udp-endpoint.ts). */
  sendThread?: boolean;
  /** The most lanes a session may have (its first peer id included); 1: none. */
  maxLanes?: number;
}): Promise<DatagramServer> {
  const maxLanes = o.maxLanes ?? 1;
  installDatagramAead(o.log);
  const ipv6 = isIPv6(o.host);
  // Every session's datagrams share this one socket: room for a burst of all of them.
  const sock: UdpEndpoint = await openUdpEndpoint({
    host: o.host,
    port: o.port,
    what: 'datagram (datagram.port)',
    rcvbuf: RCVBUF,
    sndbuf: RCVBUF,
    pmtuProbe: true,
    ...(o.sendThread === true ? { sendThread: true } : {}),
    onDatagram: (msg, address, port) => receive(msg, address, port),
    onBatchEnd: () => deliver(),
    onError: (e) => o.log.warn('datagram socket error', { error: e.message }),
  });
  o.log.debug('datagram socket', { kind: sock.kind, port: sock.port });
  const bySession = new Map<string, number>();
  /** Sessions whose hello said they rebuild HEAD/TAIL pairs, and those that unpack bundles. */
  const splits = new Set<string>();
  const bundles = new Set<string>();
  /** The further lanes' peer ids offered to each session. */
  const laneIds = new Map<string, number[]>();
  const peers = new Map<number, Peer>();
  const quarantine = new Map<number, number>();
  const drops: Record<string, number> = {};
  const closedTotals = { datagramsIn: 0, datagramsOut: 0, bundles: 0 };
  const sessionDrops: Record<string, number> = {};
  const drop = (reason: string): void => {
    drops[reason] = (drops[reason] ?? 0) + 1;
  };
  const sendTo = (p: Peer, d: Buffer): void => {
    if (p.address !== null) sock.send(d, p.address, p.port);
  };
  // Frames of one read batch go to each session together, as a TLS read's do.
  const inbound = new Map<Peer, Buffer[]>();
  const receive = (msg: Buffer, address: string, port: number): void => {
    const h = parseHeader(msg);
    if (h === null) return drop('not-data-v2');
    const p = peers.get(h.peerId);
    if (p === undefined || p.channel === null) return drop('peer-id');
    const now = o.now();
    const r = p.channel.receive(msg, now);
    if (r.kind === 'drop') return;
    // An answered probe moves tx at once, not at the next tick.
    if (p.primary) p.tunnel.datagramTx = p.channel.tx === 'datagram' ? p.txFrame : null;
    // Authentic: this is where the device is now.
    p.address = address;
    p.port = port;
    if (r.kind === 'frame' || r.kind === 'frames') {
      let list = inbound.get(p);
      if (list === undefined) inbound.set(p, (list = []));
      if (r.kind === 'frame') list.push(r.frame);
      else for (const f of r.frames) list.push(f);
    } else if (r.kind === 'ping' && r.answer) sendTo(p, r.answer);
  };
  const deliver = (): void => {
    for (const [p, frames] of inbound) if (p.live) p.tunnel.receiveFrames(frames);
    inbound.clear();
  };

  // Sessions with small frames waiting in a bundle: sealed when the task that sent them ends.
  const bundling = new Set<Peer>();
  const flushBundles = (): void => {
    for (const p of bundling) p.channel?.flushBundle(p.send);
    bundling.clear();
  };
  const txFrame = (p: Peer, c: DatagramChannel, frame: Uint8Array): boolean => {
    if (c.tx !== 'datagram' || p.address === null) return false;
    const sent = c.sealFrame(frame, o.now(), p.send);
    if (c.bundlePending && !bundling.has(p)) {
      if (bundling.size === 0) queueMicrotask(flushBundles);
      bundling.add(p);
    }
    return sent;
  };

  const tick = setInterval(() => {
    const now = o.now();
    for (const p of peers.values()) {
      const c = p.channel;
      if (c === null) continue;
      const t = c.tick(now);
      for (const d of t.send) sendTo(p, d);
      // A lane's path state only decides whether frames take it; the session's is its primary's.
      if (t.changed && p.primary) {
        p.tunnel.datagramTx = c.tx === 'datagram' ? p.txFrame : null;
        p.tunnel.sendControl({ type: 'dg-state', tx: c.tx, reason: c.reason });
        p.changed(c.tx, c.reason);
      }
    }
    for (const [id, until] of quarantine) if (until <= now) quarantine.delete(id);
  }, TICK_MS);
  tick.unref();

  const newPeerId = (): number => {
    for (;;) {
      const id = randomInt(1, 0xffffff);
      if (!peers.has(id) && !quarantine.has(id)) return id;
    }
  };
  const port = sock.port;

  return {
    port,
    drops,
    offer(sessionId: string, hello: HelloMessage) {
      if (!hello.capabilities.includes(DATAGRAM_CAPABILITY)) return null;
      if (hello.capabilities.includes(SPLIT_CAPABILITY)) splits.add(sessionId);
      if (hello.capabilities.includes(BUNDLE_CAPABILITY)) bundles.add(sessionId);
      const id = bySession.get(sessionId) ?? newPeerId();
      bySession.set(sessionId, id);
      const lanes = laneIds.get(sessionId) ?? [];
      const want = Math.min(laneCount(hello.capabilities), maxLanes) - 1;
      while (lanes.length < want) lanes.push(newPeerId());
      if (lanes.length > 0) laneIds.set(sessionId, lanes);
      // dg-split, dg-bundle: this end rebuilds HEAD/TAIL pairs and unpacks bundles (an older agent ignores the words).
      return [`${DATAGRAM_CAPABILITY}:${id}:${port}`, SPLIT_CAPABILITY, BUNDLE_CAPABILITY, ...(lanes.length > 0 ? [laneOffer(lanes)] : [])];
    },
    attach(sessionId, tunnel, transport: TunnelTransport, changed) {
      const id = bySession.get(sessionId);
      const exporter = transport.exportKeyingMaterial;
      if (id === undefined || exporter === undefined) return;
      const peerSplits = splits.has(sessionId);
      const peerBundles = bundles.has(sessionId);
      const newPeer = (peerId: number, primary: boolean): Peer => {
        const keyBlock = exportKeyBlock(exporter, CIPHER, peerId);
        const channel = new DatagramChannel(
          {
            role: 'headend',
            cipher: CIPHER,
            peerId,
            keyBlock,
            ipv6,
            peerSplits,
            peerBundles,
            alloc: sock.alloc,
            ...(o.timing ? { timing: o.timing } : {}),
          },
          o.now(),
        );
        keyBlock.fill(0);
        const send = (d: Buffer): void => sendTo(peer, d);
        const own = (frame: Uint8Array): boolean => txFrame(peer, channel, frame);
        const peer: Peer = {
          sessionId,
          tunnel,
          channel,
          primary,
          lanes: [],
          live: true,
          address: null,
          port: 0,
          changed,
          send,
          // The session's datagramTx while this side's path monitor says datagrams work: each frame takes
          // its flow's lane while that lane's own monitor says it works, else this one.
          txFrame: (frame) => {
            const lane = pickLane(frame, peer.lanes);
            return lane !== undefined && lane.channel !== null && lane.channel.tx === 'datagram' && lane.address !== null
              ? txFrame(lane, lane.channel, frame)
              : own(frame);
          },
        };
        // A peer id attached again (the same session's) retires the old one: its frames are not delivered.
        const old = peers.get(peerId);
        if (old !== undefined) old.live = false;
        peers.set(peerId, peer);
        return peer;
      };
      const primary = newPeer(id, true);
      for (const laneId of laneIds.get(sessionId) ?? []) primary.lanes.push(newPeer(laneId, false));
    },
    detach(sessionId) {
      splits.delete(sessionId);
      bundles.delete(sessionId);
      const id = bySession.get(sessionId);
      const lanes = laneIds.get(sessionId) ?? [];
      laneIds.delete(sessionId);
      if (id === undefined) return;
      bySession.delete(sessionId);
      for (const peerId of [id, ...lanes]) {
        const p = peers.get(peerId);
        peers.delete(peerId);
        quarantine.set(peerId, o.now() + QUARANTINE_MS);
        if (p === undefined) continue;
        p.live = false;
        if (p.channel) {
          closedTotals.datagramsIn += p.channel.counters.datagramsIn;
          closedTotals.datagramsOut += p.channel.counters.datagramsOut;
          closedTotals.bundles += p.channel.counters.bundles;
          for (const [k, v] of Object.entries(p.channel.counters.drops)) sessionDrops[k] = (sessionDrops[k] ?? 0) + v;
          p.channel.destroy();
        }
        if (p.primary) p.tunnel.datagramTx = null;
      }
    },
    peerState(sessionId, tx) {
      const id = bySession.get(sessionId);
      if (tx === 'tls' && id !== undefined) peers.get(id)?.channel?.peerOnTls();
    },
    transportOf(sessionId) {
      const id = bySession.get(sessionId);
      const c = id === undefined ? undefined : peers.get(id)?.channel;
      return c ? c.tx : null;
    },
    totals() {
      const t = {
        datagramsIn: closedTotals.datagramsIn,
        datagramsOut: closedTotals.datagramsOut,
        bundles: closedTotals.bundles,
        sessionDrops: { ...sessionDrops },
        onDatagrams: 0,
        sendDrops: sock.stats().dropped,
      };
      for (const p of peers.values()) {
        const c = p.channel;
        if (!c) continue;
        t.datagramsIn += c.counters.datagramsIn;
        t.datagramsOut += c.counters.datagramsOut;
        t.bundles += c.counters.bundles;
        if (c.tx === 'datagram' && p.primary) t.onDatagrams++;
        for (const [k, v] of Object.entries(c.counters.drops)) t.sessionDrops[k] = (t.sessionDrops[k] ?? 0) + v;
      }
      return t;
    },
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(tick);
        for (const p of peers.values()) p.channel?.destroy();
        peers.clear();
        void sock.close().then(resolve);
      }),
  };
}
