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

export type AuditEvent = 'connect' | 'disconnect' | 'refused' | 'headend-start' | 'epoch' | 'checkpoint' | 'rotate' | 'transport';

/**
 * Why an epoch began (written at every open of the log). The last four mean the log was not as the
 * headend left it: verify fails on such an epoch until the operator accepts it (`--accept-epoch N`).
 */
export type EpochReason = 'new-log' | 'restart' | 'restart-after-crash' | 'cut' | 'head-missing' | 'head-corrupt' | 'chain-broken';
export const TAMPER_REASONS: readonly EpochReason[] = ['cut', 'head-missing', 'head-corrupt', 'chain-broken'];

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
  /** Epoch and checkpoint records: the epoch number (1 for a new log, +1 at each open). */
  epoch?: number;
  /** A checkpoint: the seq and hash of the line it signs (the line right before it). */
  coversSeq?: number;
  coversHash?: string;
  /** A checkpoint: Ed25519 signature (base64) of checkpointMessage(), and the key's id. */
  sig?: string;
  keyId?: string;
  /** An epoch after a crash: bytes of a line cut off mid-write, removed from the end (never a whole record). */
  lostBytes?: number;
  /** A rotate record, the first line of a new file: the file that holds the lines before it. */
  file?: string;
  /** A transport record: where the session's data toward the device now leaves (datagram, tls). */
  transport?: string;
  /** A headend-start record: the headend instance writing this log (several serve one registry). */
  headend?: string;
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

export type AuditVerdict =
  | {
      ok: true;
      lines: number;
      head: AuditHead;
      /** Signed checkpoints checked. */
      checkpoints: number;
      /** Records after the last checkpoint: not signed yet (a running headend, or one that crashed: its next start signs them). */
      unsignedTail: number;
      /** Epochs, with the reason each began. */
      epochs: { epoch: number; reason: string; line: number }[];
      /** The seq before the first line checked: 0 from the beginning, more when older files were archived. */
      startSeq: number;
    }
  | { ok: false; line: number; problem: string };

/** What a checkpoint's signature covers. */
export function checkpointMessage(epoch: number, seq: number, hash: string): string {
  return `connector-audit-checkpoint/1\n${epoch}\n${seq}\n${hash}`;
}

export interface VerifyOptions {
  /** Checks a checkpoint signature; absent: checkpoints cannot be checked, and verify fails on the first. */
  verifySig?(message: string, sigBase64: string, keyId: string | undefined): boolean;
  /** Epochs begun on a tampered log that the operator has looked at and accepts ('all': the writer's own structural check). */
  acceptEpochs?: readonly number[] | 'all';
  /** The latest checkpoint shipped off the host: the log must still hold it. */
  sink?: { epoch: number; coversSeq: number; coversHash: string } | null;
  /** Where the lines begin when older files were rotated away (archived): the seq and hash before the first. */
  start?: AuditHead;
}

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
 * Checks the chain line by line (1-based line numbers in the verdict), every checkpoint's signature and
 * coverage, the epochs (a tampered one fails unless accepted), the head pointer (it may lag the log by
 * what a crash left unwritten, never lead it or disagree with it), and the off-host sink's checkpoint.
 */
export function verifyAuditLines(lines: readonly string[], head?: AuditHead, o: VerifyOptions = {}): AuditVerdict {
  const start = o.start ?? { seq: 0, hash: AUDIT_GENESIS };
  let prev: AuditHead = start;
  const hashes: string[] = [];
  const epochs: { epoch: number; reason: string; line: number }[] = [];
  let checkpoints = 0;
  let lastCheckpointLine = 0;
  let sinkSeen = false;
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
    if (rec.event === 'epoch') {
      const reason = rec.reason ?? '';
      epochs.push({ epoch: rec.epoch ?? 0, reason, line: i + 1 });
      const accepted = o.acceptEpochs === 'all' || (o.acceptEpochs ?? []).includes(rec.epoch ?? -1);
      if ((TAMPER_REASONS as readonly string[]).includes(reason) && !accepted) {
        return {
          ok: false,
          line: i + 1,
          problem: `epoch ${rec.epoch ?? '?'} began on a log that was not as the headend left it (${reason}); look at it, then accept it with --accept-epoch ${rec.epoch ?? '?'}`,
        };
      }
    }
    if (rec.event === 'checkpoint') {
      if (rec.coversSeq !== prev.seq || rec.coversHash !== prev.hash || rec.epoch === undefined || rec.sig === undefined) {
        return { ok: false, line: i + 1, problem: 'checkpoint does not cover the line before it' };
      }
      if (!o.verifySig) return { ok: false, line: i + 1, problem: 'no public key to check the signed checkpoints (pass --pubkey)' };
      if (!o.verifySig(checkpointMessage(rec.epoch, rec.coversSeq, rec.coversHash), rec.sig, rec.keyId)) {
        return { ok: false, line: i + 1, problem: 'checkpoint signature does not verify (forged, corrupt, or another key)' };
      }
      checkpoints++;
      lastCheckpointLine = i + 1;
      if (o.sink && o.sink.epoch === rec.epoch && o.sink.coversSeq === rec.coversSeq && o.sink.coversHash === rec.coversHash)
        sinkSeen = true;
    }
    prev = { seq: rec.seq, hash: sha256Hex(line) };
    hashes.push(prev.hash);
  }
  if (head) {
    if (head.seq > prev.seq) {
      return {
        ok: false,
        line: lines.length,
        problem: `the head pointer names seq ${head.seq} but the log ends at seq ${prev.seq} (lines were removed from the end)`,
      };
    }
    if (head.seq < start.seq) {
      return { ok: false, line: 1, problem: `the head pointer names seq ${head.seq}, before the first line here (seq ${start.seq + 1})` };
    }
    if (head.seq > start.seq && hashes[head.seq - start.seq - 1] !== head.hash) {
      return {
        ok: false,
        line: head.seq - start.seq,
        problem: `the head pointer's hash for seq ${head.seq} does not match that line (the log or the pointer was rewritten)`,
      };
    }
  }
  if (o.sink && !sinkSeen) {
    return {
      ok: false,
      line: lines.length,
      problem: `the log lacks the checkpoint the off-host sink holds (epoch ${o.sink.epoch}, seq ${o.sink.coversSeq}): it was cut or rewritten`,
    };
  }
  return {
    ok: true,
    lines: lines.length,
    head: prev,
    checkpoints,
    unsignedTail: lines.length - lastCheckpointLine,
    epochs,
    startSeq: start.seq,
  };
}

/**
 * Where lines that begin with a rotate record continue from (the seq and hash it names), so that they
 * verify with the files before them archived; null for any other first line: a chain that does not begin
 * at a rotation must begin at its genesis, or its front was cut.
 */
export function rotationStartOf(firstLine: string): AuditHead | null {
  const r = parseRecord(firstLine);
  return typeof r === 'string' || r.event !== 'rotate' ? null : { seq: r.seq - 1, hash: r.prev };
}

/** The epoch a record belongs to, when it says (epoch, checkpoint and rotate records do). */
export function epochOf(line: string): number | null {
  const r = parseRecord(line);
  return typeof r !== 'string' && typeof r.epoch === 'number' ? r.epoch : null;
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

/**
 * One CSV cell. A value a spreadsheet would run as a formula (leading = + - @, tab or CR: a device can
 * choose its `site`) gets a leading apostrophe, so it is shown as text (OWASP CSV injection).
 */
function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n']/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
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
