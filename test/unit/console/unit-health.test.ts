// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unitHealth } from '../../../src/console/core/unit-health.js';

test('a unit that never reported has no health, not an error', () => {
  assert.equal(unitHealth(undefined, undefined), null);
  assert.equal(unitHealth('x', 42), null);
});

test('status alone gives the OTA state; health gives tables, counters and alarms', () => {
  const s = unitHealth({ online: true, version: '1.1.0', job: { jobId: 'r1', state: 'succeeded' } }, undefined);
  assert.equal(s?.otaVersion, '1.1.0');
  assert.equal(s?.otaJob, 'r1: succeeded');
  assert.equal(s?.reportedAt, null);
  const h = unitHealth(undefined, {
    at: '2026-12-05T11:00:00.000Z',
    phase: 'running',
    tunnel: { state: 'up', rttMs: 3.2 },
    counters: { core: { a: 1, b: 0, deep: { c: 2 } }, forwarder: { d: 5 } },
    macTable: [{ mac: '02:00:00:00:00:01', side: 'lan', ageS: 1 }],
    macTotal: 900,
    neighbours: [],
    alarms: [{ code: 'split-brain', severity: 'critical', subject: '10.0.0.1', message: 'm', count: 1, active: true, clearedMs: null }],
    truncated: true,
  });
  assert.deepEqual(h?.counters, [
    ['core.a', 1],
    ['core.deep.c', 2],
    ['forwarder.d', 5],
  ]);
  assert.equal(h?.macTotal, 900, 'the total says how many the unit has, beyond the rows sent');
  assert.deepEqual(h?.alarms, [{ code: 'split-brain', severity: 'critical', subject: '10.0.0.1', message: 'm', count: 1 }]);
  assert.equal(h?.truncated, true);
});

test('documents of the wrong shape lose the wrong parts only, and lists are capped', () => {
  const h = unitHealth(
    { online: 'yes', version: 5 },
    {
      at: 7,
      tunnel: ['up'],
      counters: { x: Infinity, y: 'many', z: 3 },
      macTable: [
        null,
        'x',
        { mac: '02:00:00:00:00:01', extra: { nested: true }, note: 'y'.repeat(500) },
        ...Array.from({ length: 500 }, () => ({ mac: 'm' })),
      ],
      macTotal: -1,
      alarms: 'none',
    },
  );
  assert.ok(h);
  assert.equal(h.online, null);
  assert.equal(h.otaVersion, null);
  assert.equal(h.reportedAt, null);
  assert.deepEqual(h.tunnel, {});
  assert.deepEqual(h.counters, [['z', 3]]);
  assert.deepEqual(h.macTable[0], { mac: '02:00:00:00:00:01' }, 'objects and over-long strings are dropped from a row');
  assert.equal(h.macTable.length, 198, 'at most 200 entries are read, and non-objects among them are skipped');
  assert.equal(h.macTotal, 198);
  assert.deepEqual(h.alarms, []);
});
