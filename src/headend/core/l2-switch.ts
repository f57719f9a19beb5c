// SPDX-License-Identifier: UNLICENSED
// What the headend's session life cycle needs from whatever switches its frames: the userspace switch
// (forwarder.ts, learning and VXLAN in this process) or the kernel's (adapters/kernel-switch.ts, each
// session a port of its segment's Linux bridge). Admission, the session table, audit and metrics do not
// care which.
import type { OffloadStats, SegmentInfo, SegmentStats, SessionPort } from './forwarder.js';

/** A session as a switch holds it: it can also be ended, when its port cannot be made. */
export interface SwitchedSession extends SessionPort {
  close(reason: string, bye?: string): void;
}

export interface L2Switch {
  /** The registry's segments (load or reload); sessions of segments that remain stay attached. */
  setSegments(segments: readonly SegmentInfo[]): void;
  /** Only the segments a registry change touched: new or changed ones, and VNIs gone. */
  updateSegments(upsert: readonly SegmentInfo[], removed: readonly number[]): void;
  /** A session whose hello was answered joins its segment; false when the segment is unknown. */
  attach(vni: number, sessionId: string, session: SwitchedSession): boolean;
  detach(vni: number, sessionId: string): void;
  /** A data frame from a session, bound to segment `vni` by admission. */
  fromSession(vni: number, sessionId: string, frame: Buffer): void;
  /** A TCP super-frame with its virtio_net_hdr from a v2 session. */
  fromSessionOffload(vni: number, sessionId: string, vnetHdr: Buffer, frame: Buffer): void;
  segmentStats(): Iterable<{ info: SegmentInfo; stats: SegmentStats; macs: number; sessions: number }>;
  /** Frames dropped, by reason, since start. */
  readonly drops: Readonly<Record<string, number>>;
  readonly offloadStats: OffloadStats;
}
