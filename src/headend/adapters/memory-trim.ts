// SPDX-License-Identifier: UNLICENSED
// Handing memory back after a mass disconnect: a full garbage collection first (the closed sessions'
// TLS objects hold their native buffers until V8 collects them, and an idle headend allocates too little
// to start one), then glibc's malloc_trim(0) through the native addon on a libuv worker thread, which
// returns the free pages in the middle of the heap that free() never gives back.
// Both pause the loop: the collection for its duration (90 ms compacting after 2,000 sessions, 150 ms
// after 5,000), the trim while the loop allocates from the arena being trimmed (up to its duration,
// 40-150 ms). Back to back they held every session's frames for 300 ms after a 5,000-session teardown,
// so the trim waits a second after the collection: two shorter pauses with the loop's work between them.
// Hence also the policy in core/memory-return.ts: only after a settled, large drop, at most every 30 s.
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadTapAddon } from '../../shared/native/addon.js';
import type { Logger } from '../../shared/log.js';
import { MemoryReturn } from '../core/memory-return.js';

export type MemoryTrim = () => Promise<{ released: boolean; gcMs: number; trimMs: number; gapMs: number }>;

/** Between the collection and the trim, so their pauses do not add up. */
export const TRIM_AFTER_GC_MS = 1_000;

/**
 * V8's full collection, exposed without a command-line flag (the flag set at run time, read in a new
 * context), compacting: after a teardown the old generation's pages each keep a few live objects, and
 * a plain full collection frees none of them (2,000 sessions gone left 53 MB of old space holding 18 MB;
 * compacted, the empty pages go back). The flag is read by each collection, so it is on for this one only.
 */
function fullGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/** Null where there is nothing to call (no addon, a build without it, musl). */
export function nativeMemoryTrim(gapMs = TRIM_AFTER_GC_MS): MemoryTrim | null {
  let trim: ((cb: (released: boolean, ms: number) => void) => void) | undefined;
  try {
    trim = loadTapAddon().mallocTrim;
  } catch {
    return null;
  }
  if (trim === undefined) return null;
  const call = trim;
  const gc = fullGc();
  return async () => {
    const t0 = performance.now();
    gc();
    const gcMs = performance.now() - t0;
    await sleep(gapMs);
    const gap = performance.now() - t0 - gcMs;
    return new Promise((resolve) => call((released, trimMs) => resolve({ released, gcMs, trimMs, gapMs: gap })));
  };
}

/** Every 2 s: once the session count has settled after a large drop, freed native memory goes back to the kernel. */
export function memoryReturnLoop(
  sessions: () => number,
  log: Logger,
  counted: (released: boolean) => void,
  admitting: () => number,
): NodeJS.Timeout | undefined {
  const trim = nativeMemoryTrim();
  if (trim === null) return undefined;
  const policy = new MemoryReturn();
  let running = false;
  const timer = setInterval(() => {
    if (running || !policy.tick(Date.now(), sessions(), admitting())) return;
    running = true;
    const before = process.memoryUsage.rss();
    void trim().then(({ released, gcMs, trimMs, gapMs }) => {
      running = false;
      counted(released);
      const mb = (b: number): number => Math.round(b / 1e5) / 10;
      log.info('native memory returned after a session drop', {
        rssMbBefore: mb(before),
        rssMbAfter: mb(process.memoryUsage.rss()),
        gcMs: +gcMs.toFixed(1),
        trimMs: +trimMs.toFixed(1),
        trimAfterMs: Math.round(gapMs),
        sessions: sessions(),
      });
    });
  }, 2_000);
  timer.unref();
  return timer;
}
