// SPDX-License-Identifier: UNLICENSED
// A drill's sandbox segment ends at its expiry at the headend itself (issue 15, item 1): the switch
// leaves it out from then on, and the headend knows when to look again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SegmentBook } from '../../../../src/headend/core/segment-changes.js';
import { parseRegistry } from '../../../../src/shared/registry/registry.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const REG = parseRegistry({
  version: 1,
  tenants: {
    acme: {
      segments: {
        lan: { vni: 100 },
        'drill-a': { vni: 0xf00000, sandbox: { drill: 'a', expiresAt: new Date(T0 + 60_000).toISOString() } },
        'drill-b': { vni: 0xf00001, sandbox: { drill: 'b', expiresAt: new Date(T0 + 120_000).toISOString() } },
      },
    },
  },
});

test('an expired sandbox leaves the switch; the next expiry is known', () => {
  const book = new SegmentBook();
  const at = (ms: number): { vnis: number[]; next: number | undefined } => {
    const c = book.change(REG, ms, true);
    return { vnis: c.upsert.map((s) => s.vni), next: book.nextExpiry(ms) };
  };
  assert.deepEqual(at(T0), { vnis: [100, 0xf00000, 0xf00001], next: T0 + 60_000 });
  assert.deepEqual(at(T0 + 60_000), { vnis: [100, 0xf00001], next: T0 + 120_000 });
  assert.deepEqual(at(T0 + 120_000), { vnis: [100], next: undefined });
});
