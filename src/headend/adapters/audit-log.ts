// SPDX-License-Identifier: UNLICENSED
// Appends hash-chained audit lines (format in audit-chain.ts) to a file, keeps `<log>.head` in step, and
// signs checkpoints with the headend's own Ed25519 key (`<log>.key`, made on first use; the public half
// in `<log>.pub` for auditors). Each open begins an epoch: the log is checked against its head pointer,
// and a log that is not as the headend left it (cut, head pointer missing or rewritten, chain broken) is
// reported and recorded as such, never silently continued. A checkpoint follows every epoch record, is
// written periodically and at close, and may be copied to a sink off the host.
// Session events are rare (connect, disconnect, refusal), so each append is a synchronous write: lines
// stay in event order and a crash loses at most the line being written.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, createHash, type KeyObject } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ConnectorError, isErrno } from '../../shared/errors.js';
import {
  AUDIT_GENESIS,
  buildAuditLine,
  checkpointMessage,
  parseAuditHead,
  sha256Hex,
  splitAuditText,
  verifyAuditLines,
  type AuditEvent,
  type AuditFields,
  type AuditHead,
  type AuditVerdict,
  type EpochReason,
} from '../core/audit-chain.js';

/** The writer's own check at open: chain, coverage and head; signatures and old epochs are the auditor's. */
const STRUCTURE_ONLY = { verifySig: () => true, acceptEpochs: 'all' } as const;

export const headPathOf = (logPath: string): string => `${logPath}.head`;
export const keyPathOf = (logPath: string): string => `${logPath}.key`;
export const pubPathOf = (logPath: string): string => `${logPath}.pub`;

export interface AuditLog {
  append(event: AuditEvent, fields: AuditFields): void;
  /** Signs the chain up to here (a no-op when nothing was appended since the last checkpoint). */
  checkpoint(): void;
  readonly head: AuditHead;
  readonly epoch: number;
}

export interface AuditLogOptions {
  /** A file on another host or an append-only mount: every checkpoint is appended there too. */
  readonly sinkFile?: string | undefined;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw new ConnectorError('CK_ERR_IO', `cannot read ${path}`, { cause: e });
  }
}

/** The signing key: made on first use (0600), its public half written beside it for auditors. */
function loadKey(logPath: string): { key: KeyObject; keyId: string } {
  const keyPath = keyPathOf(logPath);
  let pem = readText(keyPath);
  if (pem === null) {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(keyPath, pem, { mode: 0o600, flag: 'wx' });
  }
  const key = createPrivateKey(pem);
  const pub = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  if (readText(pubPathOf(logPath)) !== pub) writeFileSync(pubPathOf(logPath), pub, { mode: 0o644 });
  return { key, keyId: keyIdOf(pub) };
}

const keyIdOf = (pubPem: string): string => createHash('sha256').update(pubPem).digest('hex').slice(0, 16);

function lastSeqOf(line: string | undefined, fallback: number): number {
  if (line === undefined) return 0;
  try {
    const s = (JSON.parse(line) as { seq?: unknown }).seq;
    return typeof s === 'number' ? s : fallback;
  } catch {
    return fallback;
  }
}

function lastEpochOf(lines: readonly string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (!l.includes('"event":"epoch"')) continue;
    try {
      const e = (JSON.parse(l) as { epoch?: unknown }).epoch;
      if (typeof e === 'number') return e;
    } catch {
      // not a record
    }
  }
  return 0;
}

/**
 * Opens (or creates) the log, checks it against its head pointer, begins a new epoch (recording why) and
 * signs a checkpoint. A log that is not as the headend left it is reported through `onProblem` (an alarm)
 * and its epoch record says so, so `audit verify` fails until the operator accepts that epoch.
 */
export function openAuditLog(path: string, now: () => Date, onProblem: (problem: string) => void, o: AuditLogOptions = {}): AuditLog {
  const { key, keyId } = loadKey(path);
  const text = readText(path) ?? '';
  const { lines, partialTail } = splitAuditText(text);
  let reason: EpochReason = lines.length === 0 ? 'new-log' : 'restart';
  if (partialTail) {
    // A line cut off by a crash: end it so the next line starts clean; verify will flag it.
    appendFileSync(path, '\n');
    onProblem(`audit log ${path} ended in a partial line; it was terminated and will fail verification at line ${lines.length}`);
  }
  const headText = readText(headPathOf(path));
  const headPtr = headText === null ? null : parseAuditHead(headText);
  const structural = verifyAuditLines(lines, undefined, STRUCTURE_ONLY);
  if (!structural.ok) {
    reason = 'chain-broken';
    onProblem(`audit log ${path} fails verification at line ${structural.line}: ${structural.problem}`);
  } else if (lines.length > 0 && headText === null) {
    reason = 'head-missing';
    onProblem(`audit log ${path} has no head pointer (${headPathOf(path)}): lines may have been removed from its end`);
  } else if (lines.length > 0 && headPtr === null) {
    reason = 'head-corrupt';
    onProblem(`audit log ${path}: the head pointer is unreadable: lines may have been removed from its end`);
  } else if (headPtr !== null) {
    const v = verifyAuditLines(lines, headPtr, STRUCTURE_ONLY);
    if (!v.ok) {
      reason = 'cut';
      onProblem(`audit log ${path} was cut or rewritten: ${v.problem}`);
    } else if (v.unsignedTail > 0) reason = 'restart-after-crash';
  }
  const last = lines[lines.length - 1];
  let head: AuditHead =
    last === undefined ? { seq: 0, hash: AUDIT_GENESIS } : { seq: lastSeqOf(last, lines.length), hash: sha256Hex(last) };
  const epoch = lastEpochOf(lines) + 1;
  const headPath = headPathOf(path);
  let sinceCheckpoint = 0;

  const write = (event: AuditEvent, fields: AuditFields): void => {
    const next = buildAuditLine(head, now(), event, fields);
    try {
      appendFileSync(path, next.line + '\n', { mode: 0o640 });
      writeFileSync(`${headPath}.tmp`, JSON.stringify(next.head) + '\n', { mode: 0o640 });
      renameSync(`${headPath}.tmp`, headPath);
    } catch (e) {
      throw new ConnectorError('CK_ERR_IO', `cannot append to audit log ${path}`, { cause: e });
    }
    head = next.head;
  };
  const checkpoint = (): void => {
    const sig = sign(null, Buffer.from(checkpointMessage(epoch, head.seq, head.hash)), key).toString('base64');
    const fields: AuditFields = { epoch, coversSeq: head.seq, coversHash: head.hash, sig, keyId };
    write('checkpoint', fields);
    sinceCheckpoint = 0;
    if (o.sinkFile) {
      // Off the host, a deleted or cut local log no longer verifies against what the sink holds.
      appendFileSync(o.sinkFile, JSON.stringify({ time: now().toISOString(), log: path, ...fields }) + '\n');
    }
  };
  write('epoch', { epoch, reason });
  checkpoint();
  return {
    get head() {
      return head;
    },
    epoch,
    append(event, fields) {
      write(event, fields);
      sinceCheckpoint++;
    },
    checkpoint() {
      if (sinceCheckpoint > 0) checkpoint();
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

export interface VerifyFileOptions {
  /** The headend's public key (PEM); default `<log>.pub`. An auditor should pass the copy they keep. */
  pubkeyFile?: string | undefined;
  acceptEpochs?: readonly number[];
  /** The off-host sink: its last checkpoint must be in the log. */
  sinkFile?: string | undefined;
}

export function verifyAuditFile(path: string, o: VerifyFileOptions = {}): AuditVerdict & { headChecked: boolean } {
  const f = readAuditFile(path);
  const pubPath = o.pubkeyFile ?? pubPathOf(path);
  const pubPem = existsSync(pubPath) ? readFileSync(pubPath, 'utf8') : null;
  const pub = pubPem === null ? null : createPublicKey(pubPem);
  const sinkLines = o.sinkFile ? splitAuditText(readText(o.sinkFile) ?? '').lines : [];
  const sinkLast =
    sinkLines.length > 0
      ? (JSON.parse(sinkLines[sinkLines.length - 1] ?? '{}') as { epoch: number; coversSeq: number; coversHash: string })
      : null;
  if (f.head === null && f.lines.length > 0) {
    return {
      ok: false,
      line: f.lines.length,
      problem: `no head pointer (${headPathOf(path)}): a cut at the end cannot be ruled out`,
      headChecked: false,
    };
  }
  const v = verifyAuditLines(f.lines, f.head ?? undefined, {
    ...(pub ? { verifySig: (msg: string, sig: string) => verify(null, Buffer.from(msg), pub, Buffer.from(sig, 'base64')) } : {}),
    acceptEpochs: o.acceptEpochs ?? [],
    sink: o.sinkFile ? sinkLast : null,
  });
  return { ...v, headChecked: f.head !== null };
}
