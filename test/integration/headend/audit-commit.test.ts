// SPDX-License-Identifier: UNLICENSED
// The audit writer's group commit (issue 19 item 1) and its crash consistency (issue 12): records queued in
// one tick are one write, and a writer killed at any step of a commit leaves a log that reopens without an
// alarm and verifies, having lost at most the open batch; a line cut off mid-write is removed and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitAuditText } from '../../../src/shared/audit/chain.js';
import { AuditFaultInjected, openAuditLog, type AuditFaultStep, type AuditLog } from '../../../src/headend/adapters/audit-log.js';
import { verifyAuditFile } from '../../../src/shared/audit/files.js';
import { tempDir } from '../../helpers/tmp.js';

const STEPS: AuditFaultStep[] = ['before-write', 'after-write', 'after-fsync', 'after-head-tmp', 'after-head-rename', 'after-sink'];

const records = (path: string): Record<string, unknown>[] =>
  splitAuditText(readFileSync(path, 'utf8')).lines.map((l) => JSON.parse(l) as Record<string, unknown>);

function reopen(path: string, sinkFile?: string): { log: AuditLog; problems: string[] } {
  const problems: string[] = [];
  const log = openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
    { sinkFile },
  );
  return { log, problems };
}

test('records queued in one tick are committed as one batch, in order', async (t) => {
  const path = join(tempDir(t, 'ck-audit-commit-').dir, 'audit.jsonl');
  const steps: AuditFaultStep[] = [];
  const log = openAuditLog(
    path,
    () => new Date(),
    () => undefined,
    { fault: (s) => steps.push(s) },
  );
  for (let i = 0; i < 2_000; i++) log.append('disconnect', { sessionId: `s${i}`, tenant: 'acme' });
  assert.equal(records(path).length, 2, 'nothing written synchronously by append (epoch and checkpoint only)');
  await log.flush();
  assert.equal(steps.filter((s) => s === 'before-write').length, 1, 'one write for the whole batch');
  const disc = records(path).filter((r) => r['event'] === 'disconnect');
  assert.deepEqual(
    disc.map((r) => r['sessionId']),
    Array.from({ length: 2_000 }, (_, i) => `s${i}`),
  );
  await log.close();
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.ok && v.unsignedTail, 0, 'close signs what it committed');
});

for (const step of STEPS) {
  test(`a writer killed at ${step} leaves a log that reopens without alarm and verifies`, async (t) => {
    const dir = tempDir(t, 'ck-audit-crash-').dir;
    const path = join(dir, 'audit.jsonl');
    const sink = join(dir, 'sink.jsonl');
    const first = reopen(path, sink);
    for (let i = 0; i < 5; i++) first.log.append('connect', { sessionId: `a${i}` });
    first.log.checkpoint();
    await first.log.close();

    let armed = true;
    const problems: string[] = [];
    const log = openAuditLog(
      path,
      () => new Date(),
      (p) => problems.push(p),
      {
        sinkFile: sink,
        fault: (s) => {
          if (armed && s === step) {
            armed = false;
            throw new AuditFaultInjected(s);
          }
        },
      },
    );
    for (let i = 0; i < 7; i++) log.append('disconnect', { sessionId: `b${i}` });
    log.checkpoint();
    await assert.rejects(log.flush(), AuditFaultInjected);
    assert.deepEqual(problems, []);

    const after = reopen(path, sink);
    await after.log.close();
    assert.deepEqual(after.problems, [], `no alarm after a kill at ${step}`);
    const v = verifyAuditFile(path, { sinkFile: sink });
    assert.equal(v.ok, true, JSON.stringify(v));
    const last = v.ok ? v.epochs[v.epochs.length - 1] : undefined;
    const b = records(path).filter((r) => r['event'] === 'disconnect');
    // The batch is all there or all gone (one write), never a prefix of it.
    assert.ok(b.length === 0 || b.length === 7, `batch lost whole or kept whole, got ${b.length}`);
    if (step === 'before-write') assert.equal(b.length, 0);
    else assert.equal(b.length, 7);
    // The batch ended in its checkpoint: whole on disk, it is signed; gone, nothing unsigned is left.
    assert.equal(last?.reason, 'restart');
  });
}

test('a line cut off mid-write is removed at the next open, counted in the epoch record, and no alarm', async (t) => {
  const path = join(tempDir(t, 'ck-audit-torn-').dir, 'audit.jsonl');
  const first = reopen(path);
  first.log.append('connect', { sessionId: 'x' });
  await first.log.close();
  appendFileSync(path, '{"seq":99,"time":"2026-');
  const again = reopen(path);
  await again.log.close();
  assert.deepEqual(again.problems, []);
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  const epoch = records(path).filter((r) => r['event'] === 'epoch');
  assert.equal(epoch[epoch.length - 1]?.['reason'], 'restart-after-crash');
  assert.equal(epoch[epoch.length - 1]?.['lostBytes'], 23);
});
