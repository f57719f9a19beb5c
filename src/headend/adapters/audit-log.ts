// SPDX-License-Identifier: UNLICENSED
// Appends hash-chained audit lines (format in src/shared/audit/chain.ts) to a file, keeps `<log>.head` in step, and
// signs checkpoints with the headend's own Ed25519 key (`<log>.key`, made on first use; the public half
// in `<log>.pub` for auditors). Each open begins an epoch: the log is checked against its head pointer,
// and a log that is not as the headend left it (cut, head pointer missing or rewritten, chain broken) is
// reported and recorded as such, never silently continued. A checkpoint follows every epoch record, is
// written periodically and at close, and may be copied to a sink off the host.
// Appends are asynchronous with group commit (a teardown of thousands of sessions must not hold the event
// loop): records are chained in memory in event order, and each batch is one write and one fsync of the
// log, then the head pointer (written, synced, renamed). The head never leads what is on disk, so a crash
// at any instant loses at most the open batch and is no false alarm; a line cut off mid-write is removed
// at the next open and its size recorded in the new epoch record.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, createHash, type KeyObject } from 'node:crypto';
import { appendFileSync, closeSync, fsyncSync, openSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { appendFile, rename } from 'node:fs/promises';
import { fsync as fsyncCb, write as writeCb } from 'node:fs';
import { promisify } from 'node:util';
import { basename, dirname } from 'node:path';
import { ConnectorError } from '../../shared/errors.js';
import { syncDir, writeFileDurably } from '../../shared/atomic-file.js';
import {
  AUDIT_GENESIS,
  buildAuditLine,
  checkpointMessage,
  epochOf,
  parseAuditHead,
  rotationStartOf,
  sha256Hex,
  splitAuditText,
  verifyAuditLines,
  type AuditEvent,
  type AuditFields,
  type AuditHead,
  type EpochReason,
} from '../../shared/audit/chain.js';
import { headPathOf, keyPathOf, pubPathOf, readText, rotatedFiles, rotatedPathOf } from '../../shared/audit/files.js';

/** The writer's own check at open: chain, coverage and head; signatures and old epochs are the auditor's. */
const STRUCTURE_ONLY = { verifySig: () => true, acceptEpochs: 'all' } as const;

export interface AuditLog {
  /** Queues a record (chained now, in event order); it is on disk once the batch it joined is committed. */
  append(event: AuditEvent, fields: AuditFields): void;
  /** Queues a checkpoint signing the chain up to here (nothing when no record came since the last one). */
  checkpoint(): void;
  /** Resolves once every record queued so far is on disk (rejects if the write failed; the batch is kept). */
  flush(): Promise<void>;
  /** A last checkpoint, committed; later appends are refused. */
  close(): Promise<void>;
  /** The head of the chain in memory (may be ahead of the disk by the open batch). */
  readonly head: AuditHead;
  /** The head as last committed to disk and the head pointer. */
  readonly durableHead: AuditHead;
  readonly epoch: number;
}

/** Points in a batch commit where a test may kill the writer (the hook throws; nothing is written after). */
export type AuditFaultStep =
  'before-write' | 'after-write' | 'after-fsync' | 'after-head-tmp' | 'after-head-rename' | 'after-sink' | 'after-rotate-rename';

export interface AuditLogOptions {
  /** A file on another host or an append-only mount: every checkpoint is appended there too. */
  readonly sinkFile?: string | undefined;
  /** Rotates the live file once it holds this many bytes (0 or absent: never). */
  readonly rotateBytes?: number | undefined;
  /** Test hook: called at each step of a batch commit; a throw simulates the process dying right there. */
  readonly fault?: ((step: AuditFaultStep) => void) | undefined;
}

/** Records chained per turn of the loop: about 5 ms of hashing on the slow core. */
const CHAIN_SLICE = 256;
const writeFd = promisify(writeCb);
const fsyncFd = promisify(fsyncCb);

/** The file steps of a batch: on the thread pool while running, blocking once the log is closing. */
interface BatchIo {
  write(fd: number, data: string): Promise<unknown>;
  fsync(fd: number): Promise<void>;
  /** Writes `path` (mode 0640) and syncs it before closing. */
  writeDurably(path: string, data: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  append(path: string, data: string): Promise<void>;
}

const POOLED_IO: BatchIo = {
  write: writeFd,
  fsync: fsyncFd,
  writeDurably: (path, data) => writeFileDurably(path, data, 0o640),
  rename,
  append: (path, data) => appendFile(path, data),
};

// Async only in name: each call's work is done before it returns, so awaiting it costs no turn of the loop.
const BLOCKING_IO: BatchIo = {
  write: async (fd, data) => writeSync(fd, data),
  fsync: async (fd) => fsyncSync(fd),
  async writeDurably(path, data) {
    const fd = openSync(path, 'w', 0o640);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
  rename: async (from, to) => renameSync(from, to),
  append: async (path, data) => appendFileSync(path, data),
};

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

/** The epoch of the last record that names one (a rotated-out file ends with a checkpoint, which does). */
function lastEpochOf(lines: readonly string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (!l.includes('"epoch":')) continue;
    const e = epochOf(l);
    if (e !== null) return e;
  }
  return 0;
}

/** The live file's text with a line cut off mid-write by a crash removed, and that line's size. */
function dropCutTail(path: string): { text: string; lostBytes: number } {
  const text = readText(path) ?? '';
  if (text === '' || text.endsWith('\n')) return { text, lostBytes: 0 };
  // Never a whole record, and never covered by the head pointer (which follows the fsync), so it is
  // removed; the new epoch record says how many bytes went.
  const keep = text.lastIndexOf('\n') + 1;
  truncateSync(path, Buffer.byteLength(text.slice(0, keep)));
  return { text: text.slice(0, keep), lostBytes: Buffer.byteLength(text.slice(keep)) };
}

/** Why this open begins an epoch, judged against the head pointer; a problem is reported as an alarm. */
function judgeOpen(path: string, lines: readonly string[], lostBytes: number, onProblem: (problem: string) => void): EpochReason {
  const first = lines[0];
  const start = first === undefined ? null : rotationStartOf(first);
  const structure = { ...STRUCTURE_ONLY, ...(start ? { start } : {}) };
  const headText = readText(headPathOf(path));
  const headPtr = headText === null ? null : parseAuditHead(headText);
  const structural = verifyAuditLines(lines, undefined, structure);
  if (!structural.ok) {
    onProblem(`audit log ${path} fails verification at line ${structural.line}: ${structural.problem}`);
    return 'chain-broken';
  }
  if (lines.length > 0 && headText === null) {
    onProblem(`audit log ${path} has no head pointer (${headPathOf(path)}): lines may have been removed from its end`);
    return 'head-missing';
  }
  if (lines.length > 0 && headPtr === null) {
    onProblem(`audit log ${path}: the head pointer is unreadable: lines may have been removed from its end`);
    return 'head-corrupt';
  }
  if (headPtr !== null) {
    const v = verifyAuditLines(lines, headPtr, structure);
    if (!v.ok) {
      onProblem(`audit log ${path} was cut or rewritten: ${v.problem}`);
      return 'cut';
    }
    if (v.unsignedTail > 0) return 'restart-after-crash';
  }
  return lines.length === 0 ? 'new-log' : lostBytes > 0 ? 'restart-after-crash' : 'restart';
}

/**
 * Opens (or creates) the log, checks it against its head pointer, begins a new epoch (recording why) and
 * signs a checkpoint (synchronously: the process is starting). A log that is not as the headend left it is
 * reported through `onProblem` (an alarm) and its epoch record says so, so `audit verify` fails until the
 * operator accepts that epoch. With `rotateBytes`, a full live file ends with a checkpoint, becomes the next
 * rotated file, and the new live file begins with a rotate record chained to it.
 */
export function openAuditLog(path: string, now: () => Date, onProblem: (problem: string) => void, o: AuditLogOptions = {}): AuditLog {
  const { key, keyId } = loadKey(path);
  const { text, lostBytes } = dropCutTail(path);
  const lastRotated = rotatedFiles(path).at(-1);
  // The head pointer may point into the last rotated file (a crash right after a rotation's rename), so
  // the check at open spans it and the live file.
  const lines = [...(lastRotated ? splitAuditText(readText(lastRotated.path) ?? '').lines : []), ...splitAuditText(text).lines];
  const reason = judgeOpen(path, lines, lostBytes, onProblem);
  const last = lines[lines.length - 1];
  let head: AuditHead =
    last === undefined ? { seq: 0, hash: AUDIT_GENESIS } : { seq: lastSeqOf(last, lines.length), hash: sha256Hex(last) };
  const epoch = lastEpochOf(lines) + 1;
  const headPath = headPathOf(path);
  const fault = o.fault ?? ((): void => undefined);
  const rotateBytes = o.rotateBytes ?? 0;
  let nextRotated = (lastRotated?.n ?? 0) + 1;
  let liveBytes = Buffer.byteLength(text);
  let sinceCheckpoint = 0;
  let durableHead = head;
  let closed = false;
  let dead = false;
  /** Appended, not chained yet (null: a checkpoint): chaining is done off the caller's tick, in slices. */
  const queued: ({ event: AuditEvent; fields: AuditFields; time: Date } | null)[] = [];
  /** Chained, not yet on disk: the lines (with newline), and the checkpoint copies for the sink. */
  let pending: string[] = [];
  let pendingSink: string[] = [];
  let pendingHead = head;
  let inFlight: Promise<void> | null = null;
  let scheduled = false;

  let fd = openSync(path, 'a', 0o640);
  const chain = (event: AuditEvent, fields: AuditFields, time = now()): void => {
    const next = buildAuditLine(head, time, event, fields);
    pending.push(next.line + '\n');
    head = next.head;
    pendingHead = head;
  };
  const queueCheckpoint = (): void => {
    const sig = sign(null, Buffer.from(checkpointMessage(epoch, head.seq, head.hash)), key).toString('base64');
    const fields: AuditFields = { epoch, coversSeq: head.seq, coversHash: head.hash, sig, keyId };
    chain('checkpoint', fields);
    // Off the host, a deleted or cut local log no longer verifies against what the sink holds; shipped
    // only once the checkpoint is on disk here, so a crash never leaves the sink ahead of the log.
    if (o.sinkFile) pendingSink.push(JSON.stringify({ time: now().toISOString(), log: path, ...fields }) + '\n');
  };
  const headBytes = (h: AuditHead): string => JSON.stringify(h) + '\n';

  // The open itself: epoch record and first checkpoint, committed synchronously before anything else.
  chain('epoch', lostBytes > 0 ? { epoch, reason, lostBytes } : { epoch, reason });
  queueCheckpoint();
  try {
    const data = pending.join('');
    writeSync(fd, data);
    fsyncSync(fd);
    liveBytes += Buffer.byteLength(data);
    const tmp = openSync(`${headPath}.tmp`, 'w', 0o640);
    writeSync(tmp, headBytes(head));
    fsyncSync(tmp);
    closeSync(tmp);
    renameSync(`${headPath}.tmp`, headPath);
    if (o.sinkFile) appendFileSync(o.sinkFile, pendingSink.join(''));
  } catch (e) {
    closeSync(fd);
    throw new ConnectorError('CK_ERR_IO', `cannot append to audit log ${path}`, { cause: e });
  }
  durableHead = head;
  pending = [];
  pendingSink = [];

  /**
   * Chains what was queued when called, yielding the loop every slice (a hash per record adds up); once
   * closing, without yielding: every session is going, and a shutdown waits for this.
   */
  const build = async (): Promise<void> => {
    let left = queued.length;
    while (left > 0) {
      const slice = queued.splice(0, Math.min(left, CHAIN_SLICE));
      left -= slice.length;
      for (const q of slice) {
        if (q === null) queueCheckpoint();
        else chain(q.event, q.fields, q.time);
      }
      if (left > 0 && !closed) await new Promise((r) => setImmediate(r));
    }
  };
  /** One batch: one write and one fsync of the log, then the head pointer, then the sink. */
  const writePending = async (): Promise<void> => {
    const batch = pending;
    const sinkBatch = pendingSink;
    const batchHead = pendingHead;
    pending = [];
    pendingSink = [];
    // Once closing, with blocking calls: the shutdown waits for this batch anyway, and each step awaited
    // on the thread pool would wait a whole turn of a loop busy with thousands of closing sockets (seven
    // steps: 2.4 s of a 5,000-session shutdown).
    const io = closed ? BLOCKING_IO : POOLED_IO;
    try {
      const data = batch.join('');
      fault('before-write');
      await io.write(fd, data);
      liveBytes += Buffer.byteLength(data);
      fault('after-write');
      await io.fsync(fd);
      fault('after-fsync');
      await io.writeDurably(`${headPath}.tmp`, headBytes(batchHead));
      fault('after-head-tmp');
      await io.rename(`${headPath}.tmp`, headPath);
      durableHead = batchHead;
      fault('after-head-rename');
      if (sinkBatch.length > 0 && o.sinkFile) await io.append(o.sinkFile, sinkBatch.join(''));
      fault('after-sink');
    } catch (e) {
      if (e instanceof AuditFaultInjected) {
        dead = true;
        throw e;
      }
      // Kept for the next attempt, in order, ahead of what came since (a write may have landed in part:
      // the next open removes a cut-off line).
      pending = [...batch, ...pending];
      pendingSink = [...sinkBatch, ...pendingSink];
      onProblem(`cannot append to audit log ${path}: ${e instanceof Error ? e.message : String(e)}`);
      throw new ConnectorError('CK_ERR_IO', `cannot append to audit log ${path}`, { cause: e });
    }
  };
  /**
   * Ends the live file with a signed checkpoint, renames it to the next rotated name (its number never
   * changes afterwards, so archives keep their names), and begins the new live file with a rotate record
   * naming it. A crash between any two steps leaves a chain the next open continues without an alarm.
   */
  const rotate = async (): Promise<void> => {
    queueCheckpoint();
    await writePending();
    const to = rotatedPathOf(path, nextRotated);
    await rename(path, to);
    await syncDir(dirname(path));
    closeSync(fd);
    fd = openSync(path, 'a', 0o640);
    liveBytes = 0;
    nextRotated++;
    sinceCheckpoint = 0;
    fault('after-rotate-rename');
    chain('rotate', { epoch, file: basename(to) });
    await writePending();
  };
  const commit = async (): Promise<void> => {
    await build();
    if (pending.length === 0) return;
    await writePending();
    if (rotateBytes > 0 && liveBytes >= rotateBytes && !closed) await rotate();
  };
  /** Group commit: one batch in flight; whatever arrives meanwhile forms the next one. */
  const flush = async (): Promise<void> => {
    while (!dead && (inFlight !== null || pending.length > 0 || queued.length > 0)) {
      if (inFlight === null) {
        inFlight = commit().finally(() => {
          inFlight = null;
        });
      }
      await inFlight;
    }
  };
  const kick = (): void => {
    if (scheduled || dead) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flush().catch(() => undefined); // reported through onProblem; the batch is kept
    });
  };

  return {
    get head() {
      return head;
    },
    get durableHead() {
      return durableHead;
    },
    epoch,
    append(event, fields) {
      if (closed) {
        // A record after shutdown began: an alarm naming it, never a throw into a socket handler.
        onProblem(`audit log ${path} is closed: ${event} record not written (${JSON.stringify(fields)})`);
        return;
      }
      queued.push({ event, fields, time: now() });
      sinceCheckpoint++;
      kick();
    },
    checkpoint() {
      if (closed || sinceCheckpoint === 0) return;
      queued.push(null);
      sinceCheckpoint = 0;
      kick();
    },
    flush,
    async close() {
      if (closed) return;
      if (sinceCheckpoint > 0) queued.push(null);
      closed = true;
      try {
        await flush();
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Thrown by a test's fault hook: the writer stops as a killed process would. */
export class AuditFaultInjected extends Error {}
