// SPDX-License-Identifier: UNLICENSED
// malloc_trim(0) through the native addon, on a libuv worker thread: glibc returns the arenas' free
// pages to the kernel. Null where there is nothing to call (no addon, a build without it, musl).
import { loadTapAddon } from '../../shared/native/addon.js';

export type MemoryTrim = () => Promise<{ released: boolean; ms: number }>;

export function nativeMemoryTrim(): MemoryTrim | null {
  let trim: ((cb: (released: boolean, ms: number) => void) => void) | undefined;
  try {
    trim = loadTapAddon().mallocTrim;
  } catch {
    return null;
  }
  if (trim === undefined) return null;
  const call = trim;
  return () => new Promise((resolve) => call((released, ms) => resolve({ released, ms })));
}
