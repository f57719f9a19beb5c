// SPDX-License-Identifier: UNLICENSED
// The agent's data path: frames from the TAP and from the tunnel go through the Layer-2 policy in batches,
// and each batch leaves in one call per side. No per-frame allocation: the batch arrays are reused.
import type { L2Policy } from './l2/policy.js';
import type { FrameSide } from './l2/side.js';
import type { FrameDevice, TunnelLink } from './ports.js';
import type { Clock } from '../../shared/ports.js';

export interface ForwarderCounters {
  lanRxFrames: number;
  tunnelRxFrames: number;
  toTunnelFrames: number;
  toLanFrames: number;
  repliesToLan: number;
  repliesToTunnel: number;
  tapWriteDrops: number;
  tunnelQueueDrops: number;
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
  };
  private readonly toTunnel: Buffer[] = [];
  private readonly toLan: Buffer[] = [];

  constructor(
    private readonly tap: FrameDevice,
    private readonly tunnel: TunnelLink,
    private readonly policy: L2Policy,
    private readonly clock: Clock,
  ) {}

  start(): void {
    this.tap.onFrames((frames) => this.process(frames, 'lan'));
    this.tunnel.onFrames((frames) => this.process(frames, 'tunnel'));
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
      const n = this.toLan.length;
      const written = this.tap.writeFrames(this.toLan);
      this.counters.toLanFrames += written;
      this.counters.tapWriteDrops += n - written;
      this.toLan.length = 0;
    }
  }
}
