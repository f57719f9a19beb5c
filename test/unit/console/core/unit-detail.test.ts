// SPDX-License-Identifier: UNLICENSED
// One unit's page: its live sessions and its history from the audit log, newest first, bounded, and
// nothing of another tenant shown to an msp operator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOperators } from '../../../../src/console/core/operators.js';
import type { UnitView } from '../../../../src/console/core/fleet.js';
import { unitDetail } from '../../../../src/console/core/unit-detail.js';

const HASH = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=';
const [admin, msp] = parseOperators(
  {
    operators: [
      { name: 'alice', role: 'admin', password: HASH },
      { name: 'm', role: 'msp', tenants: ['acme'], password: HASH },
    ],
  },
  'ops.json',
) as [ReturnType<typeof parseOperators>[0], ReturnType<typeof parseOperators>[0]];

const unit: UnitView = {
  serial: 'A-1',
  state: 'claimed',
  tenant: 'acme',
  segment: 'lan',
  site: 's',
  online: true,
  headend: 'h1',
  remote: '203.0.113.1:5000',
  agentVersion: '1',
  sinceMs: 5,
  bytesIn: 10,
  bytesOut: 20,
  rttMs: null,
  jitterMs: null,
  updatedAt: '2026-01-01T00:00:00Z',
};
const session = (serial: string, tenant: string, extra: Record<string, unknown> = {}) => ({
  serial,
  tenant,
  segment: 'lan',
  vni: 100,
  state: 'up',
  remote: '203.0.113.1:5000',
  site: 's',
  agentVersion: '1',
  startedAtMs: 5,
  bytesIn: 10,
  bytesOut: 20,
  headend: 'h1',
  ...extra,
});
const rec = (seq: number, event: string, serial: string, tenant: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ seq, time: `2026-12-05T00:00:${String(seq % 60).padStart(2, '0')}Z`, event, serial, tenant, ...extra });

test('a unit: its sessions (a trunk has one per VLAN), its history newest first, other units and other events left out', () => {
  const lines = [
    rec(1, 'headend-start', '', ''),
    rec(2, 'connect', 'A-1', 'acme', { remote: '203.0.113.1:5000', sessionId: 'x' }),
    rec(3, 'connect', 'A-10', 'acme'),
    rec(4, 'transport', 'A-1', 'acme', { transport: 'datagram', reason: 'probe-answered' }),
    rec(5, 'disconnect', 'A-1', 'acme', { reason: 'dead-peer', bytesIn: 100, bytesOut: 200 }),
    'not json {"A-1"',
    rec(6, 'connect', 'A-1', 'acme'),
  ];
  const d = unitDetail(
    unit,
    [
      session('A-1', 'acme', { vlan: 10, framesIn: 3, framesOut: 4, transport: 'datagram' }),
      session('A-1', 'acme', { vni: 101 }),
      session('B-1', 'acme'),
    ],
    lines,
    admin,
  );
  assert.deepEqual(
    d.sessions.map((s) => [s.vni, s.vlan, s.transport, s.framesIn]),
    [
      [100, 10, 'datagram', 3],
      [101, 0, 'tls', 0],
    ],
    'older headends leave out vlan, frames and transport: defaults',
  );
  assert.deepEqual(
    d.history.map((e) => [e.seq, e.event]),
    [
      [6, 'connect'],
      [5, 'disconnect'],
      [4, 'transport'],
      [2, 'connect'],
    ],
  );
  assert.equal(d.history[1]?.reason, 'dead-peer');
  assert.equal(d.history[1]?.bytesOut, 200);
  assert.equal(d.history[2]?.transport, 'datagram');
  assert.equal(d.online, true, 'the fleet row is kept');
});

test('history is bounded to the newest records; an msp never sees the records of a tenant not its own', () => {
  const lines: string[] = [];
  for (let i = 1; i <= 500; i++) lines.push(rec(i, i % 2 ? 'connect' : 'disconnect', 'A-1', i <= 250 ? 'globex' : 'acme'));
  const all = unitDetail(unit, [], lines, admin, 100);
  assert.equal(all.history.length, 100);
  assert.equal(all.history[0]?.seq, 500);
  assert.equal(all.history[99]?.seq, 401);
  const own = unitDetail(unit, [session('A-1', 'globex')], lines, msp, 1_000);
  assert.equal(own.history.length, 250, "the unit's time at globex (before it was claimed again for acme) stays hidden");
  assert.ok(own.history.every((e) => (e.seq ?? 0) > 250));
  assert.equal(own.sessions.length, 0, 'and so does a session reported under another tenant');
});
