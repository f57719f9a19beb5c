// SPDX-License-Identifier: UNLICENSED
// What the agent's wiring needs from the outside world and from the Layer-2 core, nothing more.

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
}

export const monotonicClock: Clock = { now: () => performance.now() };

/** The TAP, or an in-memory stand-in in tests. */
export interface FrameDevice {
  readonly maxBatch: number;
  /** Up to maxBatch frames per wake-up; the buffers are reused once the handler returns. */
  onFrames(handler: (frames: readonly Buffer[]) => void): void;
  /** Returns how many frames were accepted; the caller counts the rest as drops. */
  writeFrames(frames: readonly Buffer[]): number;
  close(): Promise<void>;
}

export type TunnelState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

export interface TunnelLink {
  readonly state: TunnelState;
  start(): void;
  /** Copies the frames into its bounded queue; returns how many were queued (the rest are counted drops). */
  sendFrames(frames: readonly Buffer[]): number;
  onFrames(handler: (frames: readonly Buffer[]) => void): void;
  onStateChange(handler: (state: TunnelState, info: { headend?: string; reason?: string }) => void): void;
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

export type FrameSide = 'lan' | 'tunnel';

/** Where one frame goes, as decided by the Layer-2 core. Reused between frames: read it, do not keep it. */
export interface Verdict {
  toTunnel: boolean;
  toLan: boolean;
  /** Frames generated locally (proxy replies), each with the side it must be sent to. */
  replies: readonly { side: FrameSide; frame: Buffer }[];
}

export interface FrameDecider {
  decide(frame: Buffer, from: FrameSide, now: number): Verdict;
  /** Periodic work: aging, re-originated GARPs/NAs that are due. */
  tick(now: number): readonly { side: FrameSide; frame: Buffer }[];
  setOwnAddresses(own: { macs: readonly number[]; ipv4: readonly string[]; ipv6: readonly string[] }): void;
  snapshot(now: number): {
    counters: Record<string, unknown>;
    macTable: Record<string, unknown>[];
    neighbours: Record<string, unknown>[];
    alarms: { active: Record<string, unknown>[]; cleared: Record<string, unknown>[] };
  };
}
