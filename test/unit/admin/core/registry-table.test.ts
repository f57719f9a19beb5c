// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRegistry } from '../../../../src/shared/registry/registry.js';
import { registryTable } from '../../../../src/admin/core/registry-table.js';

test('the registry table lists devices sorted by serial, then the denylist', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const reg = parseRegistry({
    version: 1,
    tenants: { t: { segments: { s: { vni: 5, vteps: ['10.0.0.1'] } } } },
    devices: {
      'B-2': { state: 'revoked', updatedAt: at },
      'A-1': { state: 'claimed', tenant: 't', segment: 's', batch: 'L1', updatedAt: at },
    },
    denylist: ['B-2'],
  });
  const lines = registryTable(reg);
  assert.equal(lines.length, 4);
  assert.match(lines[1] ?? '', /^A-1\s+claimed\s+t\s+s\s+L1$/);
  assert.match(lines[2] ?? '', /^B-2\s+revoked\s+-\s+-\s+-$/);
  assert.equal(lines[3], 'denylist: B-2');
});
