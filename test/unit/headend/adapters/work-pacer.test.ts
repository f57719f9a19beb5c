// SPDX-License-Identifier: UNLICENSED
// Work queued by the pacer (closes, admissions) all runs, in order, a slice at a time, with the loop's other work between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workPacer } from '../../../../src/headend/adapters/work-pacer.js';

test('queued closes run in order, in slices of the time budget, other work running between slices', async () => {
  let clock = 0;
  const pacer = workPacer(() => clock);
  const log: string[] = [];
  for (let i = 0; i < 10; i++) {
    pacer.defer(() => {
      log.push(`close ${i}`);
      clock += 1; // each close costs a millisecond
    });
  }
  assert.equal(pacer.queued, 10);
  assert.equal(log.length, 0, 'nothing runs in the caller');
  // Another session's work, due on every turn of the loop.
  let running = true;
  const other = (): void => {
    log.push('other');
    if (running) setImmediate(other);
  };
  setImmediate(other);
  for (let i = 0; i < 200 && pacer.queued > 0; i++) await new Promise((r) => setImmediate(r));
  running = false;
  const closes = log.filter((l) => l.startsWith('close'));
  assert.deepEqual(
    closes,
    Array.from({ length: 10 }, (_, i) => `close ${i}`),
  );
  assert.equal(pacer.queued, 0);
  // At most two closes (2 ms) back to back: the slices are separated by turns of the loop.
  const runs = log
    .join('|')
    .split('other')
    .map((s) => (s.match(/close/g) ?? []).length);
  assert.ok(Math.max(...runs) <= 2, `closes back to back: ${JSON.stringify(runs)}`);
  // A close queued after the queue emptied runs too.
  pacer.defer(() => log.push('late'));
  await new Promise((r) => setImmediate(r));
  assert.equal(log.at(-1), 'late');
});
