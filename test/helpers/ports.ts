// SPDX-License-Identifier: UNLICENSED
// In-memory implementations of the agent's ports (the tuntest/bindtest idea): a whole agent data path can
// run in a unit test with no root, no TAP and no sockets.
import type { FrameDevice, TunnelLink, TunnelState } from '../../src/agent/core/ports.js';

export interface MemoryTap extends FrameDevice {
  /** Frames the agent wrote to the "LAN". */
  readonly written: Buffer[];
  /** Delivers frames as if the kernel had sent them out of the TAP (one batch). */
  inject(frames: readonly Buffer[]): void;
  /** When set, writeFrames accepts at most this many frames per call. */
  acceptLimit: number;
}

export function memoryTap(maxBatch = 64): MemoryTap {
  let handler: ((frames: readonly Buffer[]) => void) | undefined;
  const tap: MemoryTap = {
    maxBatch,
    written: [],
    acceptLimit: Infinity,
    onFrames(h) {
      handler = h;
    },
    writeFrames(frames) {
      const n = Math.min(frames.length, tap.acceptLimit);
      for (let i = 0; i < n; i++) tap.written.push(Buffer.from(frames[i] as Buffer));
      return n;
    },
    inject(frames) {
      // Views into one reused buffer, as the addon hands them out: the consumer must not keep them.
      const scratch = Buffer.concat(frames as Buffer[]);
      let off = 0;
      const views = frames.map((f) => {
        const v = scratch.subarray(off, off + f.length);
        off += f.length;
        return v;
      });
      handler?.(views);
      scratch.fill(0xee);
    },
    async close() {},
  };
  return tap;
}

export interface MemoryTunnel extends TunnelLink {
  readonly sent: Buffer[];
  inject(frames: readonly Buffer[]): void;
  setState(s: TunnelState): void;
  queueLimit: number;
}

export function memoryTunnel(): MemoryTunnel {
  let handler: ((frames: readonly Buffer[]) => void) | undefined;
  const stateHandlers: ((s: TunnelState, info: { headend?: string; reason?: string }) => void)[] = [];
  let state: TunnelState = 'idle';
  const t: MemoryTunnel = {
    get state() {
      return state;
    },
    sent: [],
    queueLimit: Infinity,
    start() {
      t.setState('up');
    },
    sendFrames(frames) {
      const n = Math.min(frames.length, t.queueLimit);
      for (let i = 0; i < n; i++) t.sent.push(Buffer.from(frames[i] as Buffer));
      return n;
    },
    onFrames(h) {
      handler = h;
    },
    onStateChange(h) {
      stateHandlers.push(h);
    },
    inject(frames) {
      handler?.(frames);
    },
    setState(s) {
      state = s;
      for (const h of stateHandlers) h(s, {});
    },
    status: () => ({ state }),
    async close() {
      state = 'closed';
    },
  };
  return t;
}
