// SPDX-License-Identifier: UNLICENSED
// The headend gives freed native memory back after a mass disconnect: glibc keeps freed chunks in its
// heap when live ones sit above them, which is what thousands of closed TLS sessions leave behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nativeMemoryTrim } from '../../../src/headend/adapters/memory-trim.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('after freeing most of a fragmented native heap, the trim hands the freed pages back to the kernel', async (t) => {
  const trim = nativeMemoryTrim();
  assert.ok(trim, 'this glibc build of the addon has mallocTrim');
  // 4,000 native blocks of 24 KiB (below glibc's mmap threshold, so they come from the heap), touched;
  // every 16th stays alive, so the heap cannot shrink from its top on its own.
  let blocks: Buffer[] | null = Array.from({ length: 4_000 }, () => Buffer.allocUnsafeSlow(24 * 1024).fill(7));
  const kept = blocks.filter((_, i) => i % 16 === 0);
  blocks = null;
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
  const before = process.memoryUsage.rss();
  const r = await trim();
  const after = process.memoryUsage.rss();
  const mb = (b: number): number => Math.round(b / 1e6);
  t.diagnostic(
    `rss ${mb(before)} MB -> ${mb(after)} MB, trim ${r.trimMs.toFixed(1)} ms (gc ${r.gcMs.toFixed(1)} ms), released ${r.released}`,
  );
  assert.equal(r.released, true);
  // 3,750 freed blocks are about 92 MB: most of it must leave the process.
  assert.ok(before - after > 50e6, `RSS fell by ${mb(before - after)} MB only`);
  assert.equal(kept.length, 250);
});
