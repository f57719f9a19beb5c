// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../../../src/ota/core/range.js';

test('single byte ranges, suffixes, open ends and bad input', () => {
  assert.deepEqual(parseRange(undefined, 100), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=10-', 100), { kind: 'partial', start: 10, end: 99 });
  assert.deepEqual(parseRange('bytes=10-19', 100), { kind: 'partial', start: 10, end: 19 });
  assert.deepEqual(parseRange('bytes=90-200', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-5', 100), { kind: 'partial', start: 95, end: 99 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=20-10', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-1,5-6', 100), { kind: 'full' });
  assert.deepEqual(parseRange('items=0-1', 100), { kind: 'full' });
});
