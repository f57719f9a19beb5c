// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSha256Sums, parseSha256Sums } from '../../../../src/image/core/sha256sums.js';

const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

test('parses binary and text mode lines and lower-cases the hash', () => {
  const m = parseSha256Sums(`${A} *openwrt-imagebuilder.tar.zst\n${B}  ./profiles.json\n\n`);
  assert.equal(m.get('openwrt-imagebuilder.tar.zst'), A);
  assert.equal(m.get('profiles.json'), 'b'.repeat(64));
});

test('a garbled line is an error naming the line', () => {
  assert.throws(() => parseSha256Sums(`${A} *ok\nnot a checksum line\n`), /line 2/);
});

test('format then parse gives the same entries, sorted by file', () => {
  const text = formatSha256Sums([
    ['z', A],
    ['a', 'c'.repeat(64)],
  ]);
  assert.ok(text.startsWith(`${'c'.repeat(64)} *a\n`));
  assert.deepEqual(
    [...parseSha256Sums(text)],
    [
      ['a', 'c'.repeat(64)],
      ['z', A],
    ],
  );
});
