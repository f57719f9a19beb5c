// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditToCsv, auditToJsonl, AUDIT_COLUMNS, splitAuditText, verifyAuditLines } from '../../../../src/shared/audit/chain.js';
import { openAuditLog } from '../../../../src/headend/adapters/audit-log.js';
import { readAuditFile, verifyAuditFile } from '../../../../src/shared/audit/files.js';
import { tempDir } from '../../../helpers/tmp.js';

function tempLog(t: { after(fn: () => void): void }): string {
  const dir = tempDir(t, 'ck-audit-').dir;
  return join(dir, 'audit.jsonl');
}

async function writeSample(path: string, n = 5): Promise<void> {
  let ms = Date.parse('2026-01-01T00:00:00Z');
  const log = openAuditLog(
    path,
    () => new Date(ms++),
    () => assert.fail('fresh log reported a problem'),
  );
  for (let i = 0; i < n; i++) {
    log.append(i % 2 ? 'disconnect' : 'connect', {
      sessionId: `s${i}`,
      serial: `CN-${i}`,
      tenant: 'acme',
      remote: '10.0.0.1:5000',
      fingerprint: 'ab'.repeat(32),
      bytesIn: i * 100,
      reason: i === 3 ? 'quote " and, comma' : undefined,
    } as never);
  }
  // Committed but not closed: as a headend that crashed after the commit (no closing checkpoint).
  await log.flush();
}

test('a fresh log verifies, and reopening continues the chain', async (t) => {
  const path = tempLog(t);
  await writeSample(path, 3);
  const again = openAuditLog(
    path,
    () => new Date(),
    (p) => assert.fail(p),
  );
  // epoch + checkpoint, 3 records, then the reopen's epoch + checkpoint (signing the 3).
  assert.equal(again.head.seq, 7);
  again.append('refused', { serial: 'X', reason: 'denylisted' });
  await again.flush();
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true);
  assert.equal(v.ok && v.lines, 8);
  assert.equal(v.ok && v.checkpoints, 2);
  assert.equal(v.ok && v.unsignedTail, 1);
  assert.deepEqual(v.ok && v.epochs.map((e) => [e.epoch, e.reason]), [
    [1, 'new-log'],
    [2, 'restart-after-crash'],
  ]);
  assert.equal(v.headChecked, true);
});

for (const [name, mutate, badLine] of [
  // An edit shows where the next line's prev hash no longer matches.
  [
    'an edited line',
    (l: string[]) => {
      l[4] = (l[4] ?? '').replace('"bytesIn":200', '"bytesIn":201');
    },
    6,
  ],
  [
    'an edited last line',
    (l: string[]) => {
      l[6] = (l[6] ?? '').replace('"bytesIn":400', '"bytesIn":0');
    },
    7,
  ],
  [
    'a removed line',
    (l: string[]) => {
      l.splice(3, 1);
    },
    4,
  ],
  [
    'an inserted line',
    (l: string[]) => {
      l.splice(4, 0, l[3] ?? '');
    },
    5,
  ],
  [
    'a removed tail',
    (l: string[]) => {
      l.pop();
    },
    6,
  ],
  [
    'an appended line',
    (l: string[]) => {
      l.push(l[0] ?? '');
    },
    8,
  ],
] as const) {
  test(`verify fails on ${name}`, async (t) => {
    const path = tempLog(t);
    await writeSample(path);
    assert.equal(verifyAuditFile(path).ok, true);
    const lines = splitAuditText(readFileSync(path, 'utf8')).lines;
    mutate(lines);
    writeFileSync(path, lines.join('\n') + '\n');
    const v = verifyAuditFile(path);
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.line, badLine);
  });
}

test('without a head pointer the chain alone still catches edits inside the log', () => {
  const lines: string[] = [];
  assert.deepEqual(verifyAuditLines(lines), {
    ok: true,
    lines: 0,
    head: { seq: 0, hash: '0'.repeat(64) },
    checkpoints: 0,
    unsignedTail: 0,
    epochs: [],
    startSeq: 0,
  });
  assert.equal(verifyAuditLines(['{"seq":1,"time":"x","prev":"bad","event":"connect"}']).ok, false);
  assert.equal(verifyAuditLines(['not json']).ok, false);
});

test('csv export has a header and one well-formed row per record, quoting per RFC 4180', async (t) => {
  const path = tempLog(t);
  await writeSample(path);
  const csv = auditToCsv(readAuditFile(path).lines);
  const rows = csv.split('\r\n');
  assert.equal(rows.pop(), '');
  assert.equal(rows[0], AUDIT_COLUMNS.join(','));
  assert.equal(rows.length, 8, 'header, epoch, checkpoint, 5 records');
  assert.ok(rows[6]?.includes('"quote "" and, comma"'));
  // Every data row has as many cells as the header once quoted cells are taken as one.
  for (const r of rows.slice(1)) {
    const cells = r.match(/("([^"]|"")*"|[^,]*)(,|$)/g)?.filter((c) => c !== '') ?? [];
    assert.equal(cells.length, AUDIT_COLUMNS.length, r);
  }
});

test('jsonl export is one JSON object per line with its own hash', async (t) => {
  const path = tempLog(t);
  await writeSample(path);
  const out = auditToJsonl(readAuditFile(path).lines).trimEnd().split('\n');
  assert.equal(out.length, 7);
  const recs = out.map((l) => JSON.parse(l) as { seq: number; hash: string; prev: string });
  for (let i = 1; i < recs.length; i++) assert.equal(recs[i]?.prev, recs[i - 1]?.hash);
});

test('a log cut off mid-line (a crash during a write) is trimmed on reopen, counted, and verifies', async (t) => {
  const path = tempLog(t);
  await writeSample(path, 2);
  writeFileSync(path, readFileSync(path, 'utf8') + '{"seq":3,"ti');
  const problems: string[] = [];
  await openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
  ).close();
  assert.deepEqual(problems, []);
  assert.equal(verifyAuditFile(path).ok, true);
  assert.match(readFileSync(path, 'utf8'), /"reason":"restart-after-crash","lostBytes":12/);
});

test('csv export: a device-chosen site that a spreadsheet would run as a formula is written as text', async (t) => {
  const path = tempLog(t);
  const log = openAuditLog(
    path,
    () => new Date('2026-12-04T00:00:00Z'),
    () => assert.fail('fresh log reported a problem'),
  );
  for (const site of ['=HYPERLINK("http://evil","x")', '+1+1', '-2', '@SUM(A1)', 'plain']) {
    log.append('connect', { serial: 'CN-1', tenant: 'acme', site } as never);
  }
  await log.close();
  const rows = auditToCsv(readAuditFile(path).lines).split('\r\n').slice(3, -1);
  const siteCol = AUDIT_COLUMNS.indexOf('site');
  assert.ok(siteCol >= 0);
  for (const r of rows.slice(0, 4)) {
    const cells = r.match(/("([^"]|"")*"|[^,]*)(,|$)/g)?.filter((c) => c !== '') ?? [];
    const cell = (cells[siteCol] ?? '').replace(/,$/, '');
    assert.match(cell, /^"'[=+\-@]/, `neutralised: ${cell}`);
  }
  assert.ok(rows[4]?.includes(',plain,'), 'ordinary values are untouched');
});
