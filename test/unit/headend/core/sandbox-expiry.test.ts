// SPDX-License-Identifier: UNLICENSED
// A drill's sandbox segment ends at its expiry at the headend itself (issue 15, item 1): the switch
// leaves it out from then on, and the headend knows when to look again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextSandboxExpiry, segmentsOf } from '../../../../src/headend/core/segment-changes.js';
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
  assert.deepEqual(
    segmentsOf(REG, T0).map((s) => s.vni),
    [100, 0xf00000, 0xf00001],
  );
  assert.deepEqual(
    segmentsOf(REG, T0 + 60_000).map((s) => s.vni),
    [100, 0xf00001],
  );
  assert.deepEqual(
    segmentsOf(REG, T0 + 120_000).map((s) => s.vni),
    [100],
  );
  assert.equal(nextSandboxExpiry(REG, T0), T0 + 60_000);
  assert.equal(nextSandboxExpiry(REG, T0 + 60_000), T0 + 120_000);
  assert.equal(nextSandboxExpiry(REG, T0 + 120_000), undefined);
});
