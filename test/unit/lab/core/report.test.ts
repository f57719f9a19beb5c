// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LAB_DIR, labHints, statusLines, tunnelSummaryOf, type LabStatusReport } from '../../../../src/lab/core/report.js';

test('an agent status document becomes the tunnel summary the lab shows', () => {
  assert.deepEqual(
    tunnelSummaryOf('connector', {
      tunnel: { state: 'up', vni: 1001, rttMs: 0.5 },
      alarms: { active: [{}, {}] },
      identity: { state: 'ready' },
    }),
    {
      node: 'connector',
      state: 'up',
      identity: 'ready',
      vni: 1001,
      rttMs: 0.5,
      activeAlarms: 2,
    },
  );
  // Still enrolling: no tunnel object at all.
  assert.deepEqual(tunnelSummaryOf('connector-b', { identity: { state: 'waiting-for-claim', reason: 'not claimed' } }), {
    node: 'connector-b',
    state: 'no-tunnel',
    identity: 'waiting-for-claim',
    identityReason: 'not claimed',
    activeAlarms: 0,
  });
  assert.equal(tunnelSummaryOf('x', { tunnel: {} }).state, 'unknown');
});

test('status lines: every node, process and tunnel, with the reason an identity is not ready', () => {
  const s: LabStatusReport = {
    dir: '/tmp/l',
    prefix: 'ck12ab',
    wiring: 'one-port',
    phase: 'up',
    nodes: [
      { node: 'dc', ns: 'ck12ab-dc', exists: true, addrs: ['inet 203.0.113.10/24'], pids: [7] },
      { node: 'hv', ns: 'ck12ab-hv', exists: false, addrs: [], pids: [] },
    ],
    processes: [
      { name: 'headend', node: 'dc', pid: 7, alive: true, log: '/tmp/l/dc/headend.log' },
      { name: 'est', node: 'dc', pid: 8, alive: false, log: '/tmp/l/dc/est.log' },
    ],
    tunnels: [{ node: 'connector-b', state: 'no-tunnel', identity: 'waiting-for-claim', identityReason: 'not claimed', activeAlarms: 1 }],
  };
  const lines = statusLines(s);
  assert.equal(lines[0], 'lab ck12ab (one-port, up) in /tmp/l');
  assert.ok(lines.some((l) => /hv\s+MISSING/.test(l)));
  assert.ok(lines.some((l) => /est\s+EXITED \(pid 8\)/.test(l)));
  assert.ok(lines.some((l) => l.includes('tunnel of connector-b: no-tunnel, identity waiting-for-claim (not claimed), 1 ACTIVE ALARM(S)')));
});

test('hints name --dir only when it is not the default', () => {
  assert.ok(labHints(DEFAULT_LAB_DIR).every((h) => !h.includes('--dir')));
  assert.ok(labHints('/srv/lab').some((h) => h.includes('lab status --dir /srv/lab')));
});
