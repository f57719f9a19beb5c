// SPDX-License-Identifier: UNLICENSED
// In-memory implementations of the ports (the tuntest/bindtest idea): a whole agent data path, or a tunnel
// session pair, runs in a test with no root, no TAP, no sockets and no real timers.
import type { FrameDevice, TunnelLink, TunnelState } from '../../src/agent/core/ports.js';
import type { Clock, Scheduler } from '../../src/shared/ports.js';
import type { TunnelSession, TunnelTransport } from '../../src/shared/tunnel/session.js';

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
  /** What the fake headend grants in its hello-ack. */
  capabilities: string[];
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
    capabilities: [],
    peerCapabilities: () => (state === 'up' ? t.capabilities : []),
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

/** A manual clock and scheduler: time moves only when the test says so. */
export interface ManualTime {
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  now(): number;
  /** Moves time forward, running every timer that falls due on the way (immediates after each). */
  advance(ms: number): void;
  /** Moves time forward without running timers (as if the process had been busy). */
  skip(ms: number): void;
  /** Runs the immediates queued so far (manual immediates only). */
  runImmediates(): void;
  /** Timers still scheduled. */
  pending(): number;
}

interface Timer {
  at: number;
  every: number;
  fn: () => void;
  live: boolean;
}

/**
 * With `realImmediates`, setImmediate is Node's (writes still leave at the end of a real turn, for
 * sessions over real sockets); otherwise immediates wait for runImmediates() or the next timer.
 */
export function manualTime(start = 0, o: { realImmediates?: boolean } = {}): ManualTime {
  let now = start;
  const timers: Timer[] = [];
  const immediates: (() => void)[] = [];
  const add = (fn: () => void, ms: number, every: number): (() => void) => {
    const t: Timer = { at: now + Math.max(0, ms), every, fn, live: true };
    timers.push(t);
    return () => {
      t.live = false;
    };
  };
  const runImmediates = (): void => {
    for (let i = 0; i < 10_000 && immediates.length > 0; i++) immediates.shift()?.();
  };
  const scheduler: Scheduler = {
    setTimeout: (fn, ms) => add(fn, ms, 0),
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    setImmediate(fn) {
      if (o.realImmediates) {
        const h = setImmediate(fn);
        return () => clearImmediate(h);
      }
      let live = true;
      immediates.push(() => {
        if (live) fn();
      });
      return () => {
        live = false;
      };
    },
  };
  return {
    clock: { now: () => now },
    scheduler,
    now: () => now,
    advance(ms) {
      const target = now + ms;
      for (let guard = 0; guard < 100_000; guard++) {
        let next: Timer | undefined;
        for (const t of timers) if (t.live && t.at <= target && (next === undefined || t.at < next.at)) next = t;
        if (!next) break;
        now = next.at;
        if (next.every > 0) next.at += next.every;
        else next.live = false;
        next.fn();
        runImmediates();
      }
      for (let i = timers.length - 1; i >= 0; i--) if (!timers[i]?.live) timers.splice(i, 1);
      now = target;
    },
    skip(ms) {
      now += ms;
    },
    runImmediates,
    pending: () => timers.filter((t) => t.live).length,
  };
}

/** One end of an in-memory byte pipe, as a tunnel session's transport. */
export interface PipeEnd extends TunnelTransport {
  /** Calls of write(), i.e. coalesced writes of the session. */
  writes: number;
  /** Bytes this end reports as unsent (the socket's buffer); settable to simulate a full socket. */
  unsent: number;
  /** Stops delivering what the peer writes to this end (a process that stopped reading). */
  stall(): void;
  /** Bytes as if the peer had written them (records the session would never send). */
  inject(bytes: Buffer): void;
}

/**
 * Two connected transports. Bytes written at one end reach the other end's session on a later turn
 * (setImmediate), like a socket read; end() and destroy() reach the peer as 'end' and 'close'.
 */
export function memoryPipe(reasons: { end: string; close: string } = { end: 'peer-closed', close: 'peer-closed' }): {
  a: PipeEnd;
  b: PipeEnd;
  attach(a: TunnelSession, b: TunnelSession): void;
} {
  const sessions: [TunnelSession | null, TunnelSession | null] = [null, null];
  const stalled = [false, false];
  const ends: PipeEnd[] = [];
  const deliver = (to: 0 | 1, bytes: Buffer): void => {
    setImmediate(() => {
      if (!stalled[to]) sessions[to]?.receive(bytes);
    });
  };
  const signal = (to: 0 | 1, reason: string): void => {
    setImmediate(() => sessions[to]?.close(reason));
  };
  const make = (self: 0 | 1): PipeEnd => {
    const peer = (1 - self) as 0 | 1;
    let closed = false;
    return {
      writes: 0,
      unsent: 0,
      unreadBytes: undefined,
      write(chunks) {
        if (closed) return;
        ends[self]!.writes++;
        deliver(peer, Buffer.concat(chunks as Buffer[]));
      },
      unsentBytes: () => ends[self]!.unsent,
      end() {
        if (closed) return;
        closed = true;
        signal(peer, reasons.end);
      },
      destroy() {
        if (closed) return;
        closed = true;
        signal(peer, reasons.close);
      },
      stall() {
        stalled[self] = true;
      },
      inject(bytes) {
        deliver(self, bytes);
      },
    };
  };
  ends.push(make(0), make(1));
  return {
    a: ends[0]!,
    b: ends[1]!,
    attach(a, b) {
      sessions[0] = a;
      sessions[1] = b;
    },
  };
}
