// SPDX-License-Identifier: UNLICENSED
// The session audit log format: one JSON object per line, each holding `prev`, the SHA-256 (hex) of the
// exact bytes of the previous line (without its newline), and `seq`, counting from 1. Editing, inserting
// or removing a line breaks the chain at that point. Removing lines from the END leaves a valid chain, so
// the writer also keeps a head pointer (`<log>.head`: seq and hash of the last line) that verify checks.
// This is tamper-evidence against edits made without recomputing the chain; someone who can rewrite both
// the log and the head pointer can forge a history, which only shipping lines off the host prevents.
// Pure: strings in, results out.
import { createHash } from 'node:crypto';

export const AUDIT_GENESIS = '0'.repeat(64);

export type AuditEvent = 'connect' | 'disconnect' | 'refused' | 'headend-start';

export interface AuditFields {
  sessionId?: string;
  serial?: string;
  tenant?: string;
  segment?: string;
  vni?: number;
  /** 802.1Q VLAN of a trunk unit's session (absent: the untagged segment). */
  vlan?: number;
  remote?: string;
  fingerprint?: string;
  site?: string;
  agentVersion?: string;
  bytesIn?: number;
  bytesOut?: number;
  framesIn?: number;
  framesOut?: number;
  durationMs?: number;
  reason?: string;
}

export interface AuditRecord extends AuditFields {
  seq: number;
  time: string;
  prev: string;
  event: AuditEvent;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

export const AUDIT_COLUMNS = [
  'seq',
  'time',
  'event',
  'sessionId',
  'serial',
  'tenant',
  'segment',
  'vni',
  'remote',
  'fingerprint',
  'site',
  'agentVersion',
  'bytesIn',
  'bytesOut',
  'framesIn',
  'framesOut',
  'durationMs',
  'reason',
  'prev',
  'hash',
] as const;

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The next line of the chain after `head` (no trailing newline) and the new head. */
export function buildAuditLine(head: AuditHead, time: Date, event: AuditEvent, fields: AuditFields): { line: string; head: AuditHead } {
  const rec: AuditRecord = { seq: head.seq + 1, time: time.toISOString(), prev: head.hash, event, ...fields };
  const line = JSON.stringify(rec);
  return { line, head: { seq: rec.seq, hash: sha256Hex(line) } };
}

export type AuditVerdict = { ok: true; lines: number; head: AuditHead } | { ok: false; line: number; problem: string };

/** Splits file text into lines; a missing final newline means the last line was cut off while written. */
export function splitAuditText(text: string): { lines: string[]; partialTail: boolean } {
  if (text === '') return { lines: [], partialTail: false };
  const partialTail = !text.endsWith('\n');
  const lines = text.split('\n');
  if (!partialTail) lines.pop();
  return { lines, partialTail };
}

function parseRecord(line: string): AuditRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'is not a JSON object';
  const r = v as Record<string, unknown>;
  if (typeof r['seq'] !== 'number' || typeof r['prev'] !== 'string' || typeof r['event'] !== 'string' || typeof r['time'] !== 'string') {
    return 'lacks seq, time, prev or event';
  }
  return r as unknown as AuditRecord;
}

/**
 * Checks the chain line by line (1-based line numbers in the verdict) and, when a head pointer is given,
 * that the log ends exactly there (catches a removed tail).
 */
export function verifyAuditLines(lines: readonly string[], head?: AuditHead): AuditVerdict {
  let prev: AuditHead = { seq: 0, hash: AUDIT_GENESIS };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const rec = parseRecord(line);
    if (typeof rec === 'string') return { ok: false, line: i + 1, problem: `line ${rec}` };
    if (rec.prev !== prev.hash) {
      return { ok: false, line: i + 1, problem: `prev hash does not match line ${i} (a line was edited, inserted or removed here)` };
    }
    if (rec.seq !== prev.seq + 1) {
      return { ok: false, line: i + 1, problem: `seq ${rec.seq} follows seq ${prev.seq}` };
    }
    prev = { seq: rec.seq, hash: sha256Hex(line) };
  }
  if (head) {
    if (head.seq !== prev.seq || head.hash !== prev.hash) {
      return {
        ok: false,
        line: lines.length,
        problem: `the head pointer names seq ${head.seq} but the log ends at seq ${prev.seq} (lines were removed from or added to the end)`,
      };
    }
  }
  return { ok: true, lines: lines.length, head: prev };
}

/** The head pointer file's content; null when it is not one. */
export function parseAuditHead(text: string): AuditHead | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v['seq'] === 'number' && typeof v['hash'] === 'string' && /^[0-9a-f]{64}$/.test(v['hash'])) {
      return { seq: v['seq'], hash: v['hash'] };
    }
  } catch {
    // fall through
  }
  return null;
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header row; `hash` is the line's own SHA-256 so the export can be cross-checked. */
export function auditToCsv(lines: readonly string[]): string {
  const out = [AUDIT_COLUMNS.join(',')];
  for (const line of lines) {
    const rec = parseRecord(line);
    if (typeof rec === 'string') continue;
    const row: Record<string, unknown> = { ...(rec as unknown as Record<string, unknown>), hash: sha256Hex(line) };
    out.push(AUDIT_COLUMNS.map((c) => csvCell(row[c])).join(','));
  }
  return out.join('\r\n') + '\r\n';
}

/** JSON Lines with each record's own hash added (the original lines are already JSON Lines). */
export function auditToJsonl(lines: readonly string[]): string {
  let out = '';
  for (const line of lines) {
    const rec = parseRecord(line);
    if (typeof rec === 'string') continue;
    out += JSON.stringify({ ...rec, hash: sha256Hex(line) }) + '\n';
  }
  return out;
}
