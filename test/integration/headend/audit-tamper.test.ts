// SPDX-License-Identifier: UNLICENSED
// The audit log against the tampering an auditor worries about (issue 12), with the headend's own writer
// and `verify`: a cut tail with the head pointer deleted or corrupted, a cut followed by a restart, a cut
// with a forged head pointer (caught by the off-host sink), a forged checkpoint, another key; and no
// false alarm from a crash between the append and the head pointer's update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAuditLine, sha256Hex, splitAuditText } from '../../../src/shared/audit/chain.js';
import { openAuditLog, type AuditLog } from '../../../src/headend/adapters/audit-log.js';
import { headPathOf, verifyAuditFile } from '../../../src/shared/audit/files.js';
import { tempDir } from '../../helpers/tmp.js';

async function fresh(
  t: { after(fn: () => void): void },
  sink = false,
): Promise<{ path: string; sink: string | undefined; log: AuditLog; problems: string[] }> {
  const dir = tempDir(t, 'ck-audit-tamper-').dir;
  const path = join(dir, 'audit.jsonl');
  const sinkFile = sink ? join(dir, 'sink.jsonl') : undefined;
  const problems: string[] = [];
  const log = openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
    { sinkFile },
  );
  for (let i = 0; i < 6; i++) log.append('connect', { serial: `CN-${i}`, tenant: 'acme', sessionId: `s${i}` });
  log.checkpoint();
  for (let i = 6; i < 9; i++) log.append('disconnect', { serial: `CN-${i}`, tenant: 'acme', sessionId: `s${i}` });
  log.checkpoint();
  await log.flush();
  t.after(() => void log.close());
  return { path, sink: sinkFile, log, problems };
}

const lines = (path: string): string[] => splitAuditText(readFileSync(path, 'utf8')).lines;
const cut = (path: string, n: number): void => writeFileSync(path, lines(path).slice(0, -n).join('\n') + '\n');

test('an intact log verifies: chain, signed checkpoints, epochs, head', async (t) => {
  const { path, problems } = await fresh(t);
  assert.deepEqual(problems, []);
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.ok && v.checkpoints, 3);
  assert.equal(v.ok && v.unsignedTail, 0);
});

test('removing the last lines and deleting the head pointer fails verification', async (t) => {
  const { path } = await fresh(t);
  cut(path, 3);
  rmSync(headPathOf(path));
  const v = verifyAuditFile(path);
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.problem : '', /no head pointer/);
});

test('removing the last lines and corrupting the head pointer fails verification', async (t) => {
  const { path } = await fresh(t);
  cut(path, 3);
  writeFileSync(headPathOf(path), '{"seq":1,"hash":"zz"}\n');
  assert.equal(verifyAuditFile(path).ok, false);
});

test('a cut followed by a restart is not silently continued: alarm, a "cut" epoch, and verify fails until accepted', async (t) => {
  const { path } = await fresh(t);
  cut(path, 2);
  const problems: string[] = [];
  const again = openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
  );
  again.append('connect', { serial: 'CN-X', tenant: 'acme' });
  await again.close();
  assert.ok(
    problems.some((p) => /cut or rewritten/.test(p)),
    problems.join('; '),
  );
  const v = verifyAuditFile(path);
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.problem : '', new RegExp(`accept it with --accept-epoch ${again.epoch}`));
  const accepted = verifyAuditFile(path, { acceptEpochs: [again.epoch] });
  assert.equal(accepted.ok, true, JSON.stringify(accepted));
});

test('a cut with a forged head pointer passes locally but not against the off-host sink', async (t) => {
  const { path, sink } = await fresh(t, true);
  cut(path, 4); // back past the last checkpoint
  const rest = lines(path);
  const last = rest[rest.length - 1] ?? '';
  writeFileSync(headPathOf(path), JSON.stringify({ seq: (JSON.parse(last) as { seq: number }).seq, hash: sha256Hex(last) }) + '\n');
  assert.equal(verifyAuditFile(path).ok, true, 'locally the forged pointer hides the cut (documented limit)');
  const v = verifyAuditFile(path, { sinkFile: sink });
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.problem : '', /off-host sink/);
});

test('a forged checkpoint signature, or a check with another key, fails', async (t) => {
  const { path } = await fresh(t);
  const l = lines(path);
  const i = l.findIndex((x) => x.includes('"event":"checkpoint"'));
  const rec = JSON.parse(l[i] ?? '{}') as { sig: string };
  const forged = Buffer.from(rec.sig, 'base64');
  forged[0] = (forged[0] ?? 0) ^ 1;
  // Rebuild the chain after the edit so only the signature is wrong.
  const parsed = l.map((x) => JSON.parse(x) as Record<string, unknown>);
  (parsed[i] as { sig: string }).sig = forged.toString('base64');
  let head = { seq: 0, hash: '0'.repeat(64) };
  const out: string[] = [];
  for (const p of parsed) {
    const { seq: _s, prev: _p, time, event, ...fields } = p as { seq: number; prev: string; time: string; event: never };
    const b = buildAuditLine(head, new Date(time), event, fields);
    out.push(b.line);
    head = b.head;
  }
  writeFileSync(path, out.join('\n') + '\n');
  writeFileSync(headPathOf(path), JSON.stringify(head) + '\n');
  const v = verifyAuditFile(path);
  assert.equal(v.ok, false);
  assert.match(!v.ok ? v.problem : '', /signature does not verify/);

  const other = join(tempDir(t, 'ck-audit-key-').dir, 'other.pub');
  writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const { path: p2 } = await fresh(t);
  assert.equal(verifyAuditFile(p2, { pubkeyFile: other }).ok, false, 'checkpoints signed by another key');
});

test('no false alarm from a crash between the append and the head pointer update, before or after restart', async (t) => {
  const { path, log } = await fresh(t);
  // The line reached the file; the process died before the head pointer moved.
  const next = buildAuditLine(log.head, new Date(), 'connect', { serial: 'CN-crash', tenant: 'acme' });
  appendFileSync(path, next.line + '\n');
  const v = verifyAuditFile(path);
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.ok && v.unsignedTail, 1, 'the line is there, not yet signed');
  const problems: string[] = [];
  await openAuditLog(
    path,
    () => new Date(),
    (p) => problems.push(p),
  ).close();
  assert.deepEqual(problems, []);
  const after = verifyAuditFile(path);
  assert.equal(after.ok, true);
  assert.equal(after.ok && after.epochs[after.epochs.length - 1]?.reason, 'restart-after-crash');
  assert.equal(after.ok && after.unsignedTail, 0, 'the restart signed what the crash left');
});
