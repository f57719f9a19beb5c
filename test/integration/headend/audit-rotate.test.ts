// SPDX-License-Identifier: UNLICENSED
// Audit rotation (issue 12): a full live file is signed, renamed to the next numbered file and the chain
// goes on in a new live file; verification reads every file in order, allows the oldest to be archived
// away (and says where the chain then begins), and fails on a missing middle file, an edited rotated file
// or a front cut. A writer killed mid-rotation reopens without an alarm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { splitAuditText } from '../../../src/shared/audit/chain.js';
import { AuditFaultInjected, openAuditLog } from '../../../src/headend/adapters/audit-log.js';
import { readAuditFile, rotatedFiles, rotatedPathOf, verifyAuditFile } from '../../../src/shared/audit/files.js';
import { tempDir } from '../../helpers/tmp.js';

const ROTATE = 4_096;

const recordsOf = (path: string): Record<string, unknown>[] =>
  splitAuditText(readFileSync(path, 'utf8')).lines.map((l) => JSON.parse(l) as Record<string, unknown>);

/** A log rotated a few times: 8 batches of 20 session records, each batch well over a kilobyte. */
async function rotatedLog(t: { after(fn: () => void): void }): Promise<{ path: string; problems: string[] }> {
  const path = join(tempDir(t, 'ck-audit-rotate-').dir, 'audit.jsonl');
  const problems: string[] = [];
  const log = openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
    { rotateBytes: ROTATE },
  );
  for (let b = 0; b < 8; b++) {
    for (let i = 0; i < 20; i++) log.append('connect', { serial: `CN-${b}-${i}`, tenant: 'acme', sessionId: `s${b}-${i}` });
    await log.flush();
  }
  await log.close();
  return { path, problems };
}

test('a full live file is signed and renamed; the chain goes on in the new file and verifies across all', async (t) => {
  const { path, problems } = await rotatedLog(t);
  assert.deepEqual(problems, []);
  const files = rotatedFiles(path);
  assert.ok(files.length >= 2, `rotated at least twice (${files.length})`);
  assert.deepEqual(
    files.map((f) => f.n),
    files.map((_, i) => i + 1),
    'numbered from 1, oldest first',
  );
  for (const f of files) {
    const recs = recordsOf(f.path);
    assert.equal(recs.at(-1)?.['event'], 'checkpoint', `${basename(f.path)} ends signed`);
  }
  const live = recordsOf(path);
  assert.equal(live[0]?.['event'], 'rotate');
  assert.equal(live[0]?.['file'], basename(files.at(-1)?.path ?? ''), 'the rotate record names the file before it');
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.files, files.length + 1);
  assert.equal(v.ok && v.startSeq, 0, 'from the beginning');
  const sessions = readAuditFile(path).lines.filter((l) => l.includes('"event":"connect"'));
  assert.equal(sessions.length, 160, 'every record is in one of the files, once');
});

test('a restart after rotations continues the chain without an alarm', async (t) => {
  const { path } = await rotatedLog(t);
  const problems: string[] = [];
  const again = openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
    { rotateBytes: ROTATE },
  );
  again.append('disconnect', { serial: 'CN-0-0', tenant: 'acme' });
  await again.close();
  assert.deepEqual(problems, []);
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.ok && v.epochs.at(-1)?.reason, 'restart');
  assert.equal(v.ok && v.epochs.at(-1)?.epoch, 2, 'the epoch count carries across files');
});

test('archiving the oldest files keeps verification green and says where the chain begins', async (t) => {
  const { path } = await rotatedLog(t);
  const files = rotatedFiles(path);
  rmSync(files[0]?.path ?? '');
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.ok(v.ok && v.startSeq > 0, 'begins after the archived file');
  for (const f of files) rmSync(f.path, { force: true });
  assert.equal(verifyAuditFile(path).ok, true, 'the live file alone, every rotated one archived');
});

test('a missing middle file, an edited rotated file or a cut at the front fails', async (t) => {
  const { path } = await rotatedLog(t);
  const files = rotatedFiles(path);
  assert.ok(files.length >= 3, `enough files to lose one in the middle (${files.length})`);
  const middle = files[1]?.path ?? '';
  const saved = readFileSync(middle, 'utf8');
  rmSync(middle);
  const gone = verifyAuditFile(path);
  assert.equal(gone.ok, false);
  assert.match(!gone.ok ? gone.problem : '', new RegExp(`${basename(rotatedPathOf(path, 2))} is missing`));

  writeFileSync(middle, saved.replace('CN-', 'CX-'));
  assert.equal(verifyAuditFile(path).ok, false, 'an edited line in a rotated file');
  writeFileSync(middle, saved);
  assert.equal(verifyAuditFile(path).ok, true);

  // The oldest file without its first lines: not a rotation boundary, so not an archive but a cut.
  const first = files[0]?.path ?? '';
  writeFileSync(first, splitAuditText(readFileSync(first, 'utf8')).lines.slice(3).join('\n') + '\n');
  assert.equal(verifyAuditFile(path).ok, false, 'a front cut');
});

test('a writer killed right after the rename of a rotation reopens without an alarm and verifies', async (t) => {
  const path = join(tempDir(t, 'ck-audit-rotate-crash-').dir, 'audit.jsonl');
  const log = openAuditLog(
    path,
    () => new Date(),
    () => undefined,
    {
      rotateBytes: ROTATE,
      fault: (s) => {
        if (s === 'after-rotate-rename') throw new AuditFaultInjected(s);
      },
    },
  );
  for (let i = 0; i < 40; i++) log.append('connect', { serial: `CN-${i}`, tenant: 'acme', sessionId: `s${i}` });
  await assert.rejects(log.flush(), AuditFaultInjected);
  assert.equal(rotatedFiles(path).length, 1, 'the live file was renamed');
  assert.equal(readFileSync(path, 'utf8'), '', 'the new live file is still empty');
  const problems: string[] = [];
  await openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
    { rotateBytes: ROTATE },
  ).close();
  assert.deepEqual(problems, []);
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
});
