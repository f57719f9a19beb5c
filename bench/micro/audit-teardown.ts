// SPDX-License-Identifier: UNLICENSED
// Teardown of N sessions' audit records (issue 19 item 1): how long the event loop is held and how long
// until the records are on disk, for the group-commit writer and, in the same run, the reference: the
// previous writer (per record: appendFileSync, head pointer writeFileSync + renameSync, no fsync). The
// loop's delay is perf_hooks' histogram over the whole teardown, or the synchronous block when longer (the
// histogram misses a block that starts before its first tick). JSON on stdout, a table on
// stderr. N=1000,5000,20000 by default (SESSIONS=a,b,c to change).
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { openAuditLog } from '../../src/headend/adapters/audit-log.js';
import { AUDIT_GENESIS, buildAuditLine, type AuditFields, type AuditHead } from '../../src/shared/audit/chain.js';

const SIZES = (process.env['SESSIONS'] ?? '1000,5000,20000').split(',').map(Number);
const fields = (i: number): AuditFields => ({
  sessionId: `sess-${i}`,
  serial: `CK-${String(i).padStart(6, '0')}`,
  tenant: `tenant-${i % 20}`,
  segment: 'lan',
  vni: 1000 + (i % 20),
  remote: '203.0.113.1:40000',
  bytesIn: i * 1000,
  bytesOut: i * 900,
  framesIn: i,
  framesOut: i,
  durationMs: 3_600_000,
  reason: 'headend-shutdown',
});

interface Row {
  impl: string;
  sessions: number;
  loopHeldMs: number;
  maxLoopDelayMs: number;
  durableMs: number;
}

async function measure(impl: string, n: number, run: (n: number) => Promise<number>): Promise<Row> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  const held = await run(n);
  const durableMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20));
  h.disable();
  return {
    impl,
    sessions: n,
    loopHeldMs: +held.toFixed(2),
    maxLoopDelayMs: +Math.max(h.max / 1e6, held).toFixed(2),
    durableMs: +durableMs.toFixed(1),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ck-bench-audit-'));
const rows: Row[] = [];
try {
  for (const n of SIZES) {
    const refPath = join(dir, `ref-${n}.jsonl`);
    rows.push(
      await measure('reference: sync per record', n, async (k) => {
        let head: AuditHead = { seq: 0, hash: AUDIT_GENESIS };
        const t = performance.now();
        for (let i = 0; i < k; i++) {
          const next = buildAuditLine(head, new Date(), 'disconnect', fields(i));
          appendFileSync(refPath, next.line + '\n');
          writeFileSync(`${refPath}.head.tmp`, JSON.stringify(next.head) + '\n');
          renameSync(`${refPath}.head.tmp`, `${refPath}.head`);
          head = next.head;
        }
        return performance.now() - t;
      }),
    );
    const path = join(dir, `gc-${n}.jsonl`);
    const log = openAuditLog(
      path,
      () => new Date(),
      (p) => console.error(p),
    );
    rows.push(
      await measure('group commit (write+fsync per batch)', n, async (k) => {
        const t = performance.now();
        for (let i = 0; i < k; i++) log.append('disconnect', fields(i));
        const held = performance.now() - t;
        await log.close();
        return held;
      }),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify({ bench: 'audit-teardown', rows }, null, 2) + '\n');
console.error('impl                                   sessions  loop held ms  max loop delay ms  durable ms');
for (const r of rows) {
  console.error(
    `${r.impl.padEnd(38)} ${String(r.sessions).padStart(8)}  ${String(r.loopHeldMs).padStart(12)}  ${String(r.maxLoopDelayMs).padStart(17)}  ${String(r.durableMs).padStart(10)}`,
  );
}
