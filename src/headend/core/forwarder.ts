// SPDX-License-Identifier: UNLICENSED
// The headend's Layer-2 switch: one logical bridge per segment (keyed by VNI) whose ports are the tunnel
// sessions admitted to that segment and the segment's VTEPs. Learning per segment, split horizon:
//   - a frame from a tunnel goes to the VTEPs, and to other tunnels of the segment only if multiSite;
//   - a frame from a VTEP goes to tunnels only (the DC fabric floods among its own VTEPs).
// Pure: frames leave through the session and VTEP ports handed in (direct calls, no lookup closures),
// time comes through `now`.
import { isMulticastKey } from '../../shared/l2/mac.js';
import { newEthernetView, parseEthernet } from '../../shared/l2/ethernet.js';
import { OFFLOAD_DROPS, headFrame, parseOffload, toFrames } from '../../shared/l2/tso-segment.js';
import { Fdb, type Port } from './fdb.js';

export const FORWARD_DROPS = [
  'unknown-vni',
  'vtep-not-in-segment',
  'split-horizon',
  'hairpin',
  'session-congested',
  'eth-short',
  'eth-oversize',
  'eth-too-many-tags',
  'eth-bad-length',
  ...OFFLOAD_DROPS,
] as const;
export type ForwardDrop = (typeof FORWARD_DROPS)[number];

export interface SegmentInfo {
  vni: number;
  /** "tenant/segment", for logs and metrics labels. */
  name: string;
  vteps: readonly string[];
  multiSite: boolean;
}

/** A tunnel session as the switch sees it. */
export interface SessionPort {
  /** Queues a frame for the session; false when it dropped it (congested or closing). */
  send(frame: Buffer): boolean;
  /** The session negotiated `offload` (v2): a super-frame goes whole, as one OFFLOAD record. */
  readonly offload?: boolean;
  sendOffload?(vnetHdr: Buffer, frame: Buffer): boolean;
}

/** The VXLAN egress toward the VTEPs. */
export interface VtepPort {
  send(address: string, vni: number, frame: Buffer): void;
}

export interface DirectionStats {
  frames: number;
  bytes: number;
}

export interface SegmentStats {
  tunnelIn: DirectionStats;
  tunnelOut: DirectionStats;
  vtepIn: DirectionStats;
  vtepOut: DirectionStats;
}

interface SegmentState {
  info: SegmentInfo;
  fdb: Fdb;
  sessions: Map<string, SessionPort>;
  stats: SegmentStats;
}

export const newSegmentStats = (): SegmentStats => ({
  tunnelIn: { frames: 0, bytes: 0 },
  tunnelOut: { frames: 0, bytes: 0 },
  vtepIn: { frames: 0, bytes: 0 },
  vtepOut: { frames: 0, bytes: 0 },
});

/** The inner IP packet a VTEP path carries (its MTU of at least 1550 fits a 1514-byte frame in VXLAN). */
const FABRIC_IP_MTU = 1500;

export interface OffloadStats {
  /** OFFLOAD records from sessions, passed whole to sessions, and the frames cut from them. */
  recordsIn: number;
  whole: number;
  segmentsOut: number;
}

export class Forwarder {
  readonly offloadStats: OffloadStats = { recordsIn: 0, whole: 0, segmentsOut: 0 };
  readonly drops: Record<ForwardDrop, number> = Object.fromEntries(FORWARD_DROPS.map((d) => [d, 0])) as Record<ForwardDrop, number>;
  #segments = new Map<number, SegmentState>();
  #view = newEthernetView();

  /** Called when a MAC appears behind a session or moves to one (the EVPN feed, adapters/evpn-feed.ts). */
  onSessionMac: ((vni: number, mac: number) => void) | null = null;
  /** Called when a session left its segment (its MACs are gone from it). */
  onSessionGone: ((vni: number) => void) | null = null;

  constructor(
    private readonly vtep: VtepPort,
    private readonly fdbOptions: { ageMs: number; maxEntries: number },
    private readonly now: () => number,
  ) {}

  /**
   * Replaces the segment set (registry load or reload). Learned entries and attached sessions survive
   * for segments that still exist; entries behind VTEPs that left a segment are forgotten.
   */
  setSegments(segments: readonly SegmentInfo[]): void {
    const keep = new Set(segments.map((s) => s.vni));
    this.updateSegments(
      segments,
      [...this.#segments.keys()].filter((vni) => !keep.has(vni)),
    );
  }

  updateSegments(upsert: readonly SegmentInfo[], removed: readonly number[]): void {
    for (const vni of removed) this.#segments.delete(vni);
    for (const info of upsert) {
      const old = this.#segments.get(info.vni);
      if (old) {
        old.info = info;
        old.fdb.forgetPort((p) => p.kind === 'vtep' && !info.vteps.includes(p.address), this.now());
      } else {
        this.#segments.set(info.vni, {
          info,
          fdb: new Fdb(this.fdbOptions.ageMs, this.fdbOptions.maxEntries),
          sessions: new Map(),
          stats: newSegmentStats(),
        });
      }
    }
  }

  segment(vni: number): SegmentInfo | undefined {
    return this.#segments.get(vni)?.info;
  }

  /** Per-segment counters and table sizes for metrics. */
  *segmentStats(): Generator<{ info: SegmentInfo; stats: SegmentStats; macs: number; sessions: number }> {
    for (const s of this.#segments.values()) yield { info: s.info, stats: s.stats, macs: s.fdb.size, sessions: s.sessions.size };
  }

  /** Per segment, the MACs live behind its sessions. */
  *sessionMacs(): Generator<{ vni: number; macs: number[] }> {
    const now = this.now();
    for (const s of this.#segments.values()) yield { vni: s.info.vni, macs: s.fdb.sessionMacs(now) };
  }

  attach(vni: number, sessionId: string, session: SessionPort): boolean {
    const s = this.#segments.get(vni);
    if (!s) return false;
    s.sessions.set(sessionId, session);
    return true;
  }

  detach(vni: number, sessionId: string): void {
    const s = this.#segments.get(vni);
    if (!s) return;
    s.sessions.delete(sessionId);
    s.fdb.forgetPort((p) => p.kind === 'session' && p.id === sessionId, this.now());
    this.onSessionGone?.(vni);
  }

  #parse(frame: Buffer): boolean {
    const drop = parseEthernet(frame, this.#view);
    if (drop) {
      this.drops[drop]++;
      return false;
    }
    return true;
  }

  #sendSession(s: SegmentState, id: string, frame: Buffer): void {
    const port = s.sessions.get(id);
    if (port) this.#sendTo(s, port, frame);
    else this.drops['session-congested']++;
  }

  #sendTo(s: SegmentState, port: SessionPort, frame: Buffer): void {
    if (port.send(frame)) {
      s.stats.tunnelOut.frames++;
      s.stats.tunnelOut.bytes += frame.length;
    } else {
      this.drops['session-congested']++;
    }
  }

  #sendVtep(s: SegmentState, address: string, frame: Buffer): void {
    this.vtep.send(address, s.info.vni, frame);
    s.stats.vtepOut.frames++;
    s.stats.vtepOut.bytes += frame.length;
  }

  /** A data frame from session `sessionId`, already bound to segment `vni` by admission. */
  fromSession(vni: number, sessionId: string, frame: Buffer): void {
    const s = this.#segments.get(vni);
    if (!s || !s.sessions.has(sessionId)) {
      this.drops['unknown-vni']++;
      return;
    }
    if (!this.#parse(frame)) return;
    s.stats.tunnelIn.frames++;
    s.stats.tunnelIn.bytes += frame.length;
    const now = this.now();
    const { src, dst } = this.#view;
    if (!isMulticastKey(src)) {
      const r = s.fdb.learn(src, { kind: 'session', id: sessionId }, now);
      if ((r === 'new' || r === 'moved' || r === 'frozen') && this.onSessionMac) this.onSessionMac(s.info.vni, src);
    }
    const to = isMulticastKey(dst) ? undefined : s.fdb.lookup(dst, now);
    if (to) {
      if (to.kind === 'vtep') this.#sendVtep(s, to.address, frame);
      else if (to.id === sessionId) this.drops.hairpin++;
      else if (s.info.multiSite) this.#sendSession(s, to.id, frame);
      else this.drops['split-horizon']++;
      return;
    }
    for (const v of s.info.vteps) this.#sendVtep(s, v, frame);
    if (s.info.multiSite) {
      for (const [id, port] of s.sessions) if (id !== sessionId) this.#sendTo(s, port, frame);
    }
  }

  /**
   * An OFFLOAD record (a TCP super-frame with its virtio_net_hdr) from session `sessionId`: validated,
   * decided once on its first segment, then cut into frames within the fabric MTU toward VTEPs (the VTEP
   * sender batches them into UDP-GSO runs), and passed whole to a session that negotiated `offload`.
   */
  fromSessionOffload(vni: number, sessionId: string, vnetHdr: Buffer, frame: Buffer): void {
    const s = this.#segments.get(vni);
    if (!s || !s.sessions.has(sessionId)) {
      this.drops['unknown-vni']++;
      return;
    }
    const o = parseOffload(vnetHdr, frame);
    if (typeof o === 'string') {
      this.drops[o]++;
      return;
    }
    if (!this.#parse(headFrame(o, frame))) return;
    this.offloadStats.recordsIn++;
    s.stats.tunnelIn.frames++;
    s.stats.tunnelIn.bytes += frame.length;
    const now = this.now();
    const { src, dst } = this.#view;
    if (!isMulticastKey(src)) s.fdb.learn(src, { kind: 'session', id: sessionId }, now);
    const to = isMulticastKey(dst) ? undefined : s.fdb.lookup(dst, now);
    let segs: Buffer[] | null = null;
    const segments = (): Buffer[] => {
      if (segs === null) {
        segs = [];
        // Re-segmenting smaller is legal (a TCP receiver takes any size up to its MSS): fit the fabric.
        toFrames(o, frame, segs, o.gso ? Math.min(o.mss, FABRIC_IP_MTU - (o.headers - o.l3)) : o.mss);
        this.offloadStats.segmentsOut += segs.length;
      }
      return segs;
    };
    const toVtep = (address: string): void => {
      for (const f of segments()) this.#sendVtep(s, address, f);
    };
    const toSession = (port: SessionPort): void => {
      if (port.offload === true && port.sendOffload) {
        if (port.sendOffload(vnetHdr, frame)) {
          this.offloadStats.whole++;
          s.stats.tunnelOut.frames++;
          s.stats.tunnelOut.bytes += frame.length;
        } else this.drops['session-congested']++;
        return;
      }
      for (const f of segments()) this.#sendTo(s, port, f);
    };
    if (to) {
      if (to.kind === 'vtep') toVtep(to.address);
      else if (to.id === sessionId) this.drops.hairpin++;
      else if (!s.info.multiSite) this.drops['split-horizon']++;
      else {
        const port = s.sessions.get(to.id);
        if (port) toSession(port);
        else this.drops['session-congested']++;
      }
      return;
    }
    for (const v of s.info.vteps) toVtep(v);
    if (s.info.multiSite) {
      for (const [id, port] of s.sessions) if (id !== sessionId) toSession(port);
    }
  }

  /** A frame from a VTEP (UDP source `address`) carrying `vni`. */
  fromVtep(address: string, vni: number, frame: Buffer): void {
    const s = this.#segments.get(vni);
    if (!s) {
      this.drops['unknown-vni']++;
      return;
    }
    if (!s.info.vteps.includes(address)) {
      this.drops['vtep-not-in-segment']++;
      return;
    }
    if (!this.#parse(frame)) return;
    s.stats.vtepIn.frames++;
    s.stats.vtepIn.bytes += frame.length;
    const now = this.now();
    const { src, dst } = this.#view;
    if (!isMulticastKey(src)) s.fdb.learn(src, { kind: 'vtep', address }, now);
    const to = isMulticastKey(dst) ? undefined : s.fdb.lookup(dst, now);
    if (to) {
      if (to.kind === 'session') this.#sendSession(s, to.id, frame);
      else this.drops['split-horizon']++;
      return;
    }
    for (const port of s.sessions.values()) this.#sendTo(s, port, frame);
  }
}

export type { Port };
