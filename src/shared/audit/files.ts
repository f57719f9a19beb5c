// SPDX-License-Identifier: UNLICENSED
// The audit log on disk, as an auditor reads it: the live file (`<log>`), its head pointer, and the files
// rotated out of it (`<log>.000001`, `<log>.000002`, ... oldest first; the numbers never shift, so an
// archive copy keeps its name). The chain runs across them: the first line of each file names the hash of
// the last line of the one before. Older files may be archived away; verification then begins at the
// oldest file present and says so, and fails when a file in the middle is missing.
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConnectorError, isErrno } from '../errors.js';
import { parseAuditHead, rotationStartOf, splitAuditText, verifyAuditLines, type AuditHead, type AuditVerdict } from './chain.js';

export const headPathOf = (logPath: string): string => `${logPath}.head`;
export const keyPathOf = (logPath: string): string => `${logPath}.key`;
export const pubPathOf = (logPath: string): string => `${logPath}.pub`;
export const rotatedPathOf = (logPath: string, n: number): string => `${logPath}.${String(n).padStart(6, '0')}`;

export function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw new ConnectorError('CK_ERR_IO', `cannot read ${path}`, { cause: e });
  }
}

/** The rotated files present beside the log, oldest first. */
export function rotatedFiles(logPath: string): { n: number; path: string }[] {
  const base = basename(logPath);
  const dir = dirname(logPath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw new ConnectorError('CK_ERR_IO', `cannot list ${dir}`, { cause: e });
  }
  const out: { n: number; path: string }[] = [];
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const rest = name.slice(base.length + 1);
    if (/^\d{6,}$/.test(rest)) out.push({ n: Number(rest), path: join(dir, name) });
  }
  return out.sort((a, b) => a.n - b.n);
}

export interface AuditFile {
  /** Every line, oldest file first, then the live file. */
  lines: string[];
  head: AuditHead | null;
  partialTail: boolean;
  /** Rotated files read, oldest first. */
  rotated: { n: number; path: string }[];
  /** The seq and hash the first line continues from when it is a rotation (older files archived). */
  start: AuditHead | null;
  /** Rotated file numbers missing between the oldest present and the newest. */
  gaps: number[];
}

export function readAuditFile(path: string): AuditFile {
  const rotated = rotatedFiles(path);
  const text = readText(path);
  if (text === null && rotated.length === 0) throw new ConnectorError('CK_ERR_IO', `audit log ${path} does not exist`);
  const lines: string[] = [];
  for (const r of rotated) lines.push(...splitAuditText(readText(r.path) ?? '').lines);
  const live = splitAuditText(text ?? '');
  lines.push(...live.lines);
  const gaps: number[] = [];
  for (let i = 1; i < rotated.length; i++) {
    for (let n = (rotated[i - 1]?.n ?? 0) + 1; n < (rotated[i]?.n ?? 0); n++) gaps.push(n);
  }
  const headText = readText(headPathOf(path));
  const first = lines[0];
  return {
    lines,
    head: headText ? parseAuditHead(headText) : null,
    partialTail: live.partialTail,
    rotated,
    start: first === undefined ? null : rotationStartOf(first),
    gaps,
  };
}

export interface VerifyFileOptions {
  /** The headend's public key (PEM); default `<log>.pub`. An auditor should pass the copy they keep. */
  pubkeyFile?: string | undefined;
  acceptEpochs?: readonly number[];
  /** The off-host sink: its last checkpoint must be in the log. */
  sinkFile?: string | undefined;
}

export type FileVerdict = AuditVerdict & { headChecked: boolean; files: number };

export function verifyAuditFile(path: string, o: VerifyFileOptions = {}): FileVerdict {
  const f = readAuditFile(path);
  const files = f.rotated.length + 1;
  const pubPath = o.pubkeyFile ?? pubPathOf(path);
  const pubPem = existsSync(pubPath) ? readFileSync(pubPath, 'utf8') : null;
  const pub = pubPem === null ? null : createPublicKey(pubPem);
  const sinkLines = o.sinkFile ? splitAuditText(readText(o.sinkFile) ?? '').lines : [];
  const sinkLast =
    sinkLines.length > 0
      ? (JSON.parse(sinkLines[sinkLines.length - 1] ?? '{}') as { epoch: number; coversSeq: number; coversHash: string })
      : null;
  if (f.gaps.length > 0) {
    const missing = rotatedPathOf(path, f.gaps[0] ?? 0);
    return { ok: false, line: 0, problem: `rotated file ${missing} is missing between the ones present`, headChecked: false, files };
  }
  if (f.head === null && f.lines.length > 0) {
    return {
      ok: false,
      line: f.lines.length,
      problem: `no head pointer (${headPathOf(path)}): a cut at the end cannot be ruled out`,
      headChecked: false,
      files,
    };
  }
  // The chain begins at its genesis, or at a rotation whose older files were archived (the verdict's
  // startSeq says where); anything else missing at the front is a cut.
  const start = f.start ?? undefined;
  const v = verifyAuditLines(f.lines, f.head ?? undefined, {
    ...(pub ? { verifySig: (msg: string, sig: string) => verify(null, Buffer.from(msg), pub, Buffer.from(sig, 'base64')) } : {}),
    acceptEpochs: o.acceptEpochs ?? [],
    sink: o.sinkFile ? sinkLast : null,
    ...(start ? { start } : {}),
  });
  return { ...v, headChecked: f.head !== null, files };
}
