// SPDX-License-Identifier: UNLICENSED
// The agent's data path: frames from the TAP and from the tunnel go through the Layer-2 policy in batches,
// and each batch leaves in one call per side. No per-frame allocation: the batch arrays are reused.
// Super-frames (a TAP with offloads on, OFFLOAD records from a v2 session, docs/tunnel-protocol.md) get
// one policy decision each, on their first segment, and cross whole where the other side takes them; a
// tunnel without `offload` gets them cut into ordinary frames here (tso-segment.ts).
import type { L2Policy } from './l2/policy.js';
import type { FrameSide } from './l2/side.js';
import type { FrameDevice, TunnelLink } from './ports.js';
import type { Clock } from '../../shared/ports.js';
import { TcpCoalescer, type CoalesceCounters, type CoalesceSink } from '../../shared/l2/tcp-coalesce.js';
import {
  GSO_NONE,
  VNET_F_NEEDS_CSUM,
  completeChecksum,
  headFrame,
  parseOffload,
  toFrames,
  type Offload,
} from '../../shared/l2/tso-segment.js';

export interface ForwarderCounters {
  lanRxFrames: number;
  tunnelRxFrames: number;
  toTunnelFrames: number;
  toLanFrames: number;
  repliesToLan: number;
  repliesToTunnel: number;
  tapWriteDrops: number;
  tunnelQueueDrops: number;
  /** Super-frames (and partial-checksum frames) passed on whole, or cut into ordinary frames here. */
  offloadWhole: number;
  offloadSegmented: number;
  /** OFFLOAD headers refused by validation, by reason (offload-header, offload-ip, ...). */
  offloadDrops: Record<string, number>;
  /** Runs of one flow's TCP segments from the tunnel written to the LAN as super-frames (tcp-coalesce.ts). */
  lanCoalesce: CoalesceCounters;
}

export class Forwarder {
  readonly counters: ForwarderCounters = {
    lanRxFrames: 0,
    tunnelRxFrames: 0,
    toTunnelFrames: 0,
    toLanFrames: 0,
    repliesToLan: 0,
    repliesToTunnel: 0,
    tapWriteDrops: 0,
    tunnelQueueDrops: 0,
    offloadWhole: 0,
    offloadSegmented: 0,
    offloadDrops: {},
    lanCoalesce: { superFrames: 0, segments: 0, badChecksum: 0 },
  };
  private readonly coalescer: TcpCoalescer;
  private readonly lanSink: CoalesceSink = {
    plain: (frames) => {
      const written = this.tap.writeFrames(frames);
      this.counters.toLanFrames += written;
      this.counters.tapWriteDrops += frames.length - written;
    },
    superFrame: (hdr, frame, segments) => {
      if (this.tap.offload?.write(hdr, frame) === true) this.counters.toLanFrames += segments;
      else this.counters.tapWriteDrops += segments;
    },
  };
  private readonly toTunnel: Buffer[] = [];
  private readonly toLan: Buffer[] = [];

  constructor(
    private readonly tap: FrameDevice,
    private readonly tunnel: TunnelLink,
    private readonly policy: L2Policy,
    private readonly clock: Clock,
    private readonly options: { lanCoalesce: boolean } = { lanCoalesce: true },
  ) {
    this.coalescer = new TcpCoalescer(this.counters.lanCoalesce, tap.offload?.inetSum);
  }

  start(): void {
    this.tap.onFrames((frames, hdrs) => (hdrs ? this.fromTap(frames, hdrs) : this.process(frames, 'lan')));
    this.tunnel.onFrames((frames) => this.process(frames, 'tunnel'));
    this.tunnel.onOffload?.((hdr, frame) => this.fromTunnelOffload(hdr, frame));
    // The TAP hands over super-frames only while the session takes them whole (OFFLOAD records, or a
    // datagram channel that cuts them in C); otherwise the kernel segments them before the read, cheaper
    // than cutting them here in TypeScript.
    const offload = (): void => this.tap.offload?.set(this.tunnel.offloadUp?.() === true);
    this.tunnel.onStateChange(offload);
    this.tunnel.onOffloadChange?.(offload);
    this.tunnel.onBackpressure?.((full) => this.tap.pause?.(full));
  }

  /** A TAP batch with virtio_net_hdrs: plain frames go through process(); each super-frame on its own. */
  private fromTap(frames: readonly Buffer[], hdrs: readonly Buffer[]): void {
    let start = 0;
    for (let i = 0; i < frames.length; i++) {
      const h = hdrs[i] as Buffer;
      if (h[1] === GSO_NONE) {
        // A single frame with a partial checksum (a local sender's): summed here, in the batch buffer, so
        // it stays on the batched path; a super-frame record per small frame cost more than the sum.
        if (((h[0] ?? 0) & VNET_F_NEEDS_CSUM) !== 0 && !this.completeInPlace(h, frames[i] as Buffer)) {
          if (i > start) this.process(frames.slice(start, i), 'lan');
          start = i + 1;
        }
        continue;
      }
      // Frames before this one leave first: one flow's order is kept.
      if (i > start) this.process(frames.slice(start, i), 'lan');
      start = i + 1;
      this.lanOffload(h, frames[i] as Buffer);
    }
    if (start === 0) this.process(frames, 'lan');
    else if (start < frames.length) this.process(frames.slice(start), 'lan');
  }

  /** Completes a non-GSO partial checksum in place; false (counted) when the header does not fit the frame. */
  private completeInPlace(hdr: Buffer, frame: Buffer): boolean {
    const o = this.validOffload(hdr, frame);
    if (o === null) return false;
    completeChecksum(frame, o.hdr.csumStart, o.hdr.csumOffset);
    return true;
  }

  private validOffload(hdr: Buffer, frame: Buffer): Offload | null {
    const o = parseOffload(hdr, frame);
    if (typeof o !== 'string') return o;
    this.counters.offloadDrops[o] = (this.counters.offloadDrops[o] ?? 0) + 1;
    return null;
  }

  private lanOffload(hdr: Buffer, frame: Buffer): void {
    this.counters.lanRxFrames++;
    const o = this.validOffload(hdr, frame);
    if (o === null || this.policy.decide(headFrame(o, frame), 'lan', this.clock.now()).action !== 'tunnel') return;
    if (this.tunnel.state !== 'up') {
      this.counters.tunnelQueueDrops++;
      return;
    }
    if (this.tunnel.offloadUp?.() === true && this.tunnel.sendOffload?.(hdr, frame, o) === true) {
      this.counters.offloadWhole++;
      this.counters.toTunnelFrames++;
      return;
    }
    // Offloads were on when the kernel read it, but this session does not take super-frames.
    const n = toFrames(o, frame, this.toTunnel);
    this.counters.offloadSegmented++;
    const sent = this.tunnel.sendFrames(this.toTunnel);
    this.counters.toTunnelFrames += sent;
    this.counters.tunnelQueueDrops += n - sent;
    this.toTunnel.length = 0;
  }

  private fromTunnelOffload(hdr: Buffer, frame: Buffer): void {
    this.counters.tunnelRxFrames++;
    const o = this.validOffload(hdr, frame);
    if (o === null || this.policy.decide(headFrame(o, frame), 'tunnel', this.clock.now()).action !== 'lan') return;
    this.flush();
    const off = this.tap.offload;
    if (off !== undefined) {
      if (off.write(hdr, frame)) this.counters.toLanFrames++;
      else this.counters.tapWriteDrops++;
      this.counters.offloadWhole++;
      return;
    }
    const n = toFrames(o, frame, this.toLan);
    this.counters.offloadSegmented++;
    const written = this.tap.writeFrames(this.toLan);
    this.counters.toLanFrames += written;
    this.counters.tapWriteDrops += n - written;
    this.toLan.length = 0;
  }

  /** Runs the policy's periodic work and sends what it generated (GARP / unsolicited NA re-origination). */
  tick(): void {
    const now = this.clock.now();
    this.policy.tick(now);
    for (const { toward, frame } of this.policy.reoriginator.due(now)) {
      (toward === 'lan' ? this.toLan : this.toTunnel).push(frame);
    }
    this.flush();
  }

  private process(frames: readonly Buffer[], from: FrameSide): void {
    const now = this.clock.now();
    if (from === 'lan') this.counters.lanRxFrames += frames.length;
    else this.counters.tunnelRxFrames += frames.length;
    for (const frame of frames) {
      const d = this.policy.decide(frame, from, now);
      if (d.action === 'tunnel') {
        if (from === 'lan') this.toTunnel.push(frame);
      } else if (d.action === 'lan') {
        if (from === 'tunnel') this.toLan.push(frame);
      } else if (d.action === 'reply') {
        for (const r of d.replies) {
          if (d.replyToward === 'lan') {
            this.toLan.push(r);
            this.counters.repliesToLan++;
          } else {
            this.toTunnel.push(r);
            this.counters.repliesToTunnel++;
          }
        }
      }
    }
    // The input frames are views into a reused batch buffer: both sinks consume them synchronously.
    this.flush();
  }

  private flush(): void {
    if (this.toTunnel.length > 0) {
      const n = this.toTunnel.length;
      const sent = this.tunnel.state === 'up' ? this.tunnel.sendFrames(this.toTunnel) : 0;
      this.counters.toTunnelFrames += sent;
      this.counters.tunnelQueueDrops += n - sent;
      this.toTunnel.length = 0;
    }
    if (this.toLan.length > 0) {
      // A TAP that takes super-frames gets one per run of a flow's segments: one write and one trip
      // through the bridge and the LAN host's stack instead of one per segment.
      if (this.options.lanCoalesce && this.tap.offload !== undefined && this.toLan.length > 1)
        this.coalescer.coalesce(this.toLan, this.lanSink);
      else this.lanSink.plain(this.toLan);
      this.toLan.length = 0;
    }
  }
}
