// SPDX-License-Identifier: UNLICENSED
// Appends hash-chained audit lines (format in audit-chain.ts) to a file and keeps `<log>.head` in step.
// Session events are rare (connect, disconnect, refusal), so each append is a synchronous write: lines
// stay in event order and a crash loses at most the line being written.
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ConnectorError, isErrno } from '../../shared/errors.js';
import {
  AUDIT_GENESIS,
  buildAuditLine,
  parseAuditHead,
  sha256Hex,
  splitAuditText,
  verifyAuditLines,
  type AuditEvent,
  type AuditFields,
  type AuditHead,
  type AuditVerdict,
} from '../core/audit-chain.js';

export const headPathOf = (logPath: string): string => `${logPath}.head`;

export interface AuditLog {
  append(event: AuditEvent, fields: AuditFields): void;
  readonly head: AuditHead;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw new ConnectorError('CK_ERR_IO', `cannot read ${path}`, { cause: e });
  }
}

/**
 * Opens (or creates) the log and continues its chain from the last complete line. A broken existing
 * chain is reported through `onProblem` and the log continues from its last line, so the break stays
 * visible to `audit verify` instead of being papered over.
 */
export function openAuditLog(path: string, now: () => Date, onProblem: (problem: string) => void): AuditLog {
  const text = readText(path) ?? '';
  const { lines, partialTail } = splitAuditText(text);
  if (partialTail) {
    // A line cut off by a crash: end it so the next line starts clean; verify will flag it.
    appendFileSync(path, '\n');
    onProblem(`audit log ${path} ended in a partial line; it was terminated and will fail verification at line ${lines.length}`);
  }
  const headText = readText(headPathOf(path));
  const verdict = verifyAuditLines(lines, headText ? (parseAuditHead(headText) ?? undefined) : undefined);
  if (!verdict.ok) onProblem(`audit log ${path} fails verification at line ${verdict.line}: ${verdict.problem}`);
  let head: AuditHead = { seq: 0, hash: AUDIT_GENESIS };
  const last = lines[lines.length - 1];
  if (last !== undefined) {
    let seq = lines.length;
    try {
      const s = (JSON.parse(last) as { seq?: unknown }).seq;
      if (typeof s === 'number') seq = s;
    } catch {
      // keep the line count
    }
    head = { seq, hash: sha256Hex(last) };
  }
  const headPath = headPathOf(path);
  return {
    get head() {
      return head;
    },
    append(event, fields) {
      const next = buildAuditLine(head, now(), event, fields);
      try {
        appendFileSync(path, next.line + '\n', { mode: 0o640 });
        writeFileSync(`${headPath}.tmp`, JSON.stringify(next.head) + '\n', { mode: 0o640 });
        renameSync(`${headPath}.tmp`, headPath);
      } catch (e) {
        throw new ConnectorError('CK_ERR_IO', `cannot append to audit log ${path}`, { cause: e });
      }
      head = next.head;
    },
  };
}

export interface AuditFile {
  lines: string[];
  head: AuditHead | null;
  partialTail: boolean;
}

export function readAuditFile(path: string): AuditFile {
  const text = readText(path);
  if (text === null) throw new ConnectorError('CK_ERR_IO', `audit log ${path} does not exist`);
  const { lines, partialTail } = splitAuditText(text);
  const headText = readText(headPathOf(path));
  return { lines, head: headText ? parseAuditHead(headText) : null, partialTail };
}

export function verifyAuditFile(path: string): AuditVerdict & { headChecked: boolean } {
  const f = readAuditFile(path);
  const v = verifyAuditLines(f.lines, f.head ?? undefined);
  return { ...v, headChecked: f.head !== null };
}
