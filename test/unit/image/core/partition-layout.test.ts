// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRockchipLayout, parseSfdiskJson } from '../../../../src/image/core/partition-layout.js';

const sfdisk = (parts: { start: number; size: number; type?: string }[], label = 'dos'): string =>
  JSON.stringify({
    partitiontable: {
      label,
      id: '0x5354414e',
      device: 'x.img',
      unit: 'sectors',
      sectorsize: 512,
      partitions: parts.map((p, i) => ({ node: `x.img${i + 1}`, type: '83', ...p })),
    },
  });

const want = { kernelPartsizeMib: 16, rootfsPartsizeMib: 512 };

test('the rockchip layout passes: p1 at 32 MiB (16 MiB), p2 at 64 MiB (ROOTFS_PARTSIZE)', () => {
  assert.deepEqual(
    checkRockchipLayout(
      parseSfdiskJson(
        sfdisk([
          { start: 65536, size: 32768 },
          { start: 131072, size: 512 * 2048 },
        ]),
      ),
      want,
    ),
    [],
  );
});

test('each deviation is reported', () => {
  const problems = checkRockchipLayout(
    parseSfdiskJson(
      sfdisk(
        [
          { start: 2048, size: 32768 },
          { start: 131072, size: 104 * 2048, type: 'c' },
        ],
        'gpt',
      ),
    ),
    want,
  );
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems.join('\n'), /MBR/);
  assert.match(problems.join('\n'), /p1 starts at 1 MiB/);
  assert.match(problems.join('\n'), /p2 is 104 MiB, expected ROOTFS_PARTSIZE 512/);
  assert.match(problems.join('\n'), /p2 type c/);
});
