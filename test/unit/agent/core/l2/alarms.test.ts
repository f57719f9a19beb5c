// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlarmSet, ALARM_CODES, ALARM_SEVERITY } from '../../../../../src/agent/core/l2/alarms.js';

test('raising an active alarm counts; clearing ends the episode; raising again starts a new one', () => {
  const a = new AlarmSet();
  a.raise('split-brain', '192.0.2.10', 100, 'both sides');
  a.raise('split-brain', '192.0.2.10', 200);
  let s = a.snapshot(200);
  assert.equal(s.active.length, 1);
  const x = s.active[0];
  assert.ok(x);
  assert.deepEqual(
    { code: x.code, severity: x.severity, subject: x.subject, firstMs: x.firstMs, lastMs: x.lastMs, count: x.count, message: x.message },
    { code: 'split-brain', severity: 'critical', subject: '192.0.2.10', firstMs: 100, lastMs: 200, count: 2, message: 'both sides' },
  );
  assert.ok(Object.isFrozen(x) && Object.isFrozen(s.active));
  assert.equal(a.clear('split-brain', '192.0.2.10', 300), true);
  assert.equal(a.clear('split-brain', '192.0.2.10', 301), false);
  s = a.snapshot(300);
  assert.equal(s.active.length, 0);
  assert.equal(s.cleared[0]?.clearedMs, 300);
  a.raise('split-brain', '192.0.2.10', 400);
  s = a.snapshot(400);
  assert.equal(s.active[0]?.count, 1);
  assert.equal(s.active[0]?.firstMs, 400);
});

test('active alarms are sorted by severity; cleared ones are pruned after keepClearedMs', () => {
  const a = new AlarmSet({ keepClearedMs: 1000 });
  a.raise('bum-rate-exceeded', 'from-lan broadcast', 0);
  a.raise('bpdu-from-tunnel', '', 1);
  a.raise('mac-table-full', '', 2);
  assert.deepEqual(
    a.snapshot(3).active.map((x) => x.code),
    ['bpdu-from-tunnel', 'mac-table-full', 'bum-rate-exceeded'],
  );
  a.clearCode('bum-rate-exceeded', 10);
  assert.equal(a.snapshot(1009).cleared.length, 1);
  assert.equal(a.snapshot(1010).cleared.length, 0);
});

test('the set is bounded: extra subjects fold into one alarm-overflow alarm', () => {
  const a = new AlarmSet({ maxAlarms: 8 });
  for (let i = 0; i < 1000; i++) a.raise('mac-move-frozen', `mac-${i}`, i);
  assert.ok(a.size <= 8);
  assert.ok(a.isActive('alarm-overflow', ''));
  assert.ok(a.snapshot(1000).active.length <= 8);
});

test('every code has a severity', () => {
  for (const c of ALARM_CODES) assert.ok(ALARM_SEVERITY[c]);
});

test('episodes are reported when they start and end, not for repeats (what the agent logs)', () => {
  const a = new AlarmSet();
  const seen: string[] = [];
  a.onChange = (what, al) => seen.push(`${what}:${al.code}:${al.subject}`);
  a.raise('split-brain', '192.168.10.5', 1, 'claimed by 02:00:00:00:00:99');
  a.raise('split-brain', '192.168.10.5', 2);
  a.raise('split-brain', '192.168.10.5', 3);
  a.clear('split-brain', '192.168.10.5', 4);
  a.clear('split-brain', '192.168.10.5', 5);
  a.raise('split-brain', '192.168.10.5', 6);
  a.clearIdle('split-brain', 1, 10);
  assert.deepEqual(seen, [
    'raised:split-brain:192.168.10.5',
    'cleared:split-brain:192.168.10.5',
    'raised:split-brain:192.168.10.5',
    'cleared:split-brain:192.168.10.5',
  ]);
});
