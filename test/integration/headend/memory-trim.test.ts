// SPDX-License-Identifier: UNLICENSED
// The headend gives freed native memory back after a mass disconnect: glibc keeps freed chunks in its
// heap when live ones sit above them, which is what thousands of closed TLS sessions leave behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
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

test('the collection before the trim compacts: the pages a teardown leaves sparsely used go back', async (t) => {
  const trim = nativeMemoryTrim();
  assert.ok(trim);
  const oldSpace = (): { size: number; used: number } => {
    const s = getHeapSpaceStatistics().find((x) => x.space_name === 'old_space');
    assert.ok(s);
    return { size: s.space_size, used: s.space_used_size };
  };
  // Two million small objects promoted to the old generation, then all but every 20th dropped: each
  // page keeps a few live objects, as the sessions that stay do after a mass disconnect.
  let all: { i: number; s: string }[] | null = [];
  for (let i = 0; i < 2_000_000; i++) all.push({ i, s: `x${i}` });
  gc();
  const live = all.filter((_, i) => i % 20 === 0);
  all = null;
  gc();
  const before = oldSpace();
  await trim();
  const after = oldSpace();
  const mb = (b: number): number => Math.round(b / 1e6);
  t.diagnostic(`old space ${mb(before.size)} MB holding ${mb(before.used)} MB -> ${mb(after.size)} MB holding ${mb(after.used)} MB`);
  // A plain full collection leaves the sparse pages (measured: 48 MB holding 9); compacted, little more than what is live stays.
  assert.ok(before.size > 2.5 * before.used, 'the old space was sparse to begin with');
  assert.ok(after.size < 1.6 * after.used + 4e6, `old space still ${mb(after.size)} MB for ${mb(after.used)} MB live`);
  assert.equal(live.length, 100_000);
});

test('the trim waits after the collection: their pauses do not add up, the loop runs between them', async () => {
  const trim = nativeMemoryTrim(200);
  assert.ok(trim);
  const t0 = performance.now();
  let fired = Number.NaN;
  setTimeout(() => (fired = performance.now() - t0), 20);
  const r = await trim();
  assert.ok(r.gapMs >= 190, `the trim began ${r.gapMs.toFixed(0)} ms after the collection`);
  // The timer's turn came after the collection and before the trim began.
  assert.ok(
    fired >= 20 && fired <= r.gcMs + r.gapMs,
    `timer at ${fired.toFixed(1)} ms; collection ${r.gcMs.toFixed(1)} ms, gap ${r.gapMs.toFixed(1)} ms`,
  );
});
