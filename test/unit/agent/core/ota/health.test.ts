// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEALTH_MAX_BYTES, HEALTH_MAX_ROWS, healthDoc } from '../../../../../src/agent/core/ota/health.js';
import type { StatusDoc } from '../../../../../src/agent/core/status-format.js';

const AT = new Date('2026-12-05T11:00:00Z');

function status(macs: number, neighbours: number, pad = 0): StatusDoc {
  return {
    version: '1.2.3',
    pid: 1,
    uptimeS: 60,
    phase: 'running',
    tunnel: { state: 'up', headend: '203.0.113.10:443' },
    counters: { core: { framesIn: 5 } },
    macTable: Array.from({ length: macs }, (_, i) => ({
      mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      side: 'lan',
      note: 'x'.repeat(pad),
    })),
    neighbours: Array.from({ length: neighbours }, (_, i) => ({ ip: `192.168.${i >> 8}.${i & 255}`, mac: '02:00:00:00:00:01' })),
    alarms: { active: [{ code: 'split-brain', severity: 'critical', subject: '192.168.0.1', message: 'held on both sides', count: 2 }] },
    ota: { state: 'ready' },
  };
}

test('the health document carries what the console shows: tunnel, counters, tables with totals, active alarms', () => {
  const h = healthDoc(status(3, 2), AT);
  assert.equal(h.at, '2026-12-05T11:00:00.000Z');
  assert.deepEqual(h.tunnel, { state: 'up', headend: '203.0.113.10:443' });
  assert.deepEqual(h.counters, { core: { framesIn: 5 } });
  assert.equal(h.macTable.length, 3);
  assert.equal(h.macTotal, 3);
  assert.equal(h.neighbourTotal, 2);
  assert.deepEqual(h.alarms, [
    { code: 'split-brain', severity: 'critical', subject: '192.168.0.1', message: 'held on both sides', count: 2 },
  ]);
  assert.equal(h.truncated, false);
});

test('a LAN with thousands of MACs is cut to the row limit, then to the byte limit, and says so', () => {
  const big = healthDoc(status(5_000, 3_000), AT);
  assert.equal(big.macTable.length, HEALTH_MAX_ROWS);
  assert.equal(big.macTotal, 5_000);
  assert.equal(big.neighbours.length, HEALTH_MAX_ROWS);
  assert.equal(big.truncated, true);
  const long = healthDoc(status(1_000, 0, 1_000), AT);
  assert.ok(Buffer.byteLength(JSON.stringify(long)) <= HEALTH_MAX_BYTES);
  assert.ok(long.macTable.length < HEALTH_MAX_ROWS && long.macTable.length > 0, `${long.macTable.length} rows`);
  assert.equal(long.truncated, true);
});
