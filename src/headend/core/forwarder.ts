// SPDX-License-Identifier: UNLICENSED
// The headend's Layer-2 switch: one logical bridge per segment (keyed by VNI) whose ports are the tunnel
// sessions admitted to that segment and the segment's VTEPs. Learning per segment, split horizon:
//   - a frame from a tunnel goes to the VTEPs, and to other tunnels of the segment only if multiSite;
//   - a frame from a VTEP goes to tunnels only (the DC fabric floods among its own VTEPs).
// Pure: frames leave through the session and VTEP ports handed in (direct calls, no lookup closures),
// time comes through `now`.
import { isMulticastKey } from '../../shared/l2/mac.js';
import { newEthernetView, parseEthernet } from '../../shared/l2/ethernet.js';
import { OFFLOAD_DROPS, headView, inetSum, parseOffload, toFrames, type InetSum } from '../../shared/l2/tso-segment.js';
import { TcpCoalescer, type CoalesceCounters, type CoalesceSink } from '../../shared/l2/tcp-coalesce.js';
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

export interface ForwarderOptions {
  /** Runs of a VTEP's TCP segments toward a session taking OFFLOAD records leave as one (vxlan.coalesce). */
  coalesce: boolean;
  /** The checksum sum the coalescer checks each segment with (the addon's C one where there is one). */
  sum?: InetSum;
}

export class Forwarder {
  readonly offloadStats: OffloadStats = { recordsIn: 0, whole: 0, segmentsOut: 0 };
  /** Runs of TCP segments from VTEPs merged toward sessions (fromVtepBatch). */
  readonly vtepCoalesce: CoalesceCounters = { superFrames: 0, segments: 0, badChecksum: 0 };
  readonly #coalescer: TcpCoalescer;
  readonly #coalesceOn: boolean;
  // What the coalescer's sink needs of the batch being switched; set for the call only.
  #batchSegment: SegmentState | null = null;
  #batchAddress = '';
  readonly #vtepSink: CoalesceSink = {
    plain: (frames) => {
      const s = this.#batchSegment as SegmentState;
      for (const f of frames) this.#fromVtepFrame(s, this.#batchAddress, f);
    },
    superFrame: (vnetHdr, frame, segments) =>
      this.#fromVtepSuper(this.#batchSegment as SegmentState, this.#batchAddress, vnetHdr, frame, segments),
  };
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
    options: ForwarderOptions = { coalesce: true },
  ) {
    this.#coalesceOn = options.coalesce;
    this.#coalescer = new TcpCoalescer(this.vtepCoalesce, options.sum ?? inetSum);
  }

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

  /** `frames`: how many frames a refusal drops (a coalesced super-frame's segments). */
  #parse(frame: Buffer, frames = 1): boolean {
    const drop = parseEthernet(frame, this.#view);
    if (drop) {
      this.drops[drop] += frames;
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
    if (!this.#parse(headView(o, frame))) return;
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

  /** The segment of `vni` if VTEP `address` may send into it; else the drop is counted. */
  #vtepSegment(address: string, vni: number): SegmentState | null {
    const s = this.#segments.get(vni);
    if (!s) {
      this.drops['unknown-vni']++;
      return null;
    }
    if (!s.info.vteps.includes(address)) {
      this.drops['vtep-not-in-segment']++;
      return null;
    }
    return s;
  }

  /** A frame from a VTEP (UDP source `address`) carrying `vni`. */
  fromVtep(address: string, vni: number, frame: Buffer): void {
    const s = this.#vtepSegment(address, vni);
    if (s) this.#fromVtepFrame(s, address, frame);
  }

  /**
   * Frames read together from one VTEP for one VNI (a read batch, a GRO run): when a session of the
   * segment takes OFFLOAD records (TLS, v2), runs of one flow's TCP segments become one super-frame
   * (shared/l2/tcp-coalesce.ts), decided once and sent as one record that the agent writes to its TAP
   * whole. Not toward datagrams: the channel would cut it again and the agent coalesces them itself, and
   * measured, the merge cost what it saved (docs/performance.md). Order within a flow is kept; `frames`
   * may be reused once this returns.
   */
  fromVtepBatch(address: string, vni: number, frames: readonly Buffer[]): void {
    const s = this.#vtepSegment(address, vni);
    if (!s) {
      // Counted per frame, as one at a time would have been.
      if (frames.length > 1) this.drops[this.#segments.has(vni) ? 'vtep-not-in-segment' : 'unknown-vni'] += frames.length - 1;
      return;
    }
    if (!this.#coalesceOn || frames.length < 2 || !anyTakesOffload(s)) {
      for (const f of frames) this.#fromVtepFrame(s, address, f);
      return;
    }
    this.#batchSegment = s;
    this.#batchAddress = address;
    try {
      this.#coalescer.coalesce(frames, this.#vtepSink);
    } finally {
      this.#batchSegment = null;
    }
  }

  #fromVtepFrame(s: SegmentState, address: string, frame: Buffer): void {
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

  /** A super-frame the coalescer made of `segments` frames from a VTEP: decided once, as those frames would have been. */
  #fromVtepSuper(s: SegmentState, address: string, vnetHdr: Buffer, frame: Buffer, segments: number): void {
    const o = parseOffload(vnetHdr, frame);
    if (typeof o === 'string') {
      // Not expected from the coalescer; counted, and its frames lost rather than guessed at.
      this.drops[o] += segments;
      return;
    }
    // The policy looks at its first segment, as at any super-frame.
    if (!this.#parse(headView(o, frame), segments)) return;
    // As the frames it was made of: each carried the headers.
    const bytes = frame.length + (segments - 1) * o.headers;
    s.stats.vtepIn.frames += segments;
    s.stats.vtepIn.bytes += bytes;
    const now = this.now();
    const { src, dst } = this.#view;
    if (!isMulticastKey(src)) s.fdb.learn(src, { kind: 'vtep', address }, now);
    const to = isMulticastKey(dst) ? undefined : s.fdb.lookup(dst, now);
    const toSession = (port: SessionPort): void => {
      if (port.offload === true && port.sendOffload?.(vnetHdr, frame) === true) {
        s.stats.tunnelOut.frames += segments;
        s.stats.tunnelOut.bytes += bytes;
        return;
      }
      // Not taken whole (a version-1 agent, a session on datagrams): as the frames it was made of.
      const segs: Buffer[] = [];
      toFrames(o, frame, segs, o.mss);
      for (const f of segs) this.#sendTo(s, port, f);
    };
    if (to) {
      if (to.kind === 'session') {
        const port = s.sessions.get(to.id);
        if (port) toSession(port);
        else this.drops['session-congested'] += segments;
      } else this.drops['split-horizon'] += segments;
      return;
    }
    for (const port of s.sessions.values()) toSession(port);
  }
}

/** Whether any session of the segment takes OFFLOAD records now (else coalescing would be undone at once). */
function anyTakesOffload(s: SegmentState): boolean {
  for (const p of s.sessions.values()) if (p.offload === true) return true;
  return false;
}

export type { Port };
