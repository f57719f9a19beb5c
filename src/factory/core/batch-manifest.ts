// SPDX-License-Identifier: UNLICENSED
// The batch manifest: one line per provisioned unit, as CSV (for spreadsheets/MES) and JSON Lines (for
// tools), plus the enrollment allowlist the DC imports with `connector registry import`. Pure formatting;
// adapters/manifest-files.ts appends the lines.
import { join } from 'node:path';

export interface ManifestRecord {
  time: string;
  serial: string;
  hwRev: string;
  macs: string[];
  batch: string;
  station: string;
  /** IDevID certificate serial number (hex) */
  idevidCertSerial: string;
  /** SHA-256 of the IDevID certificate DER (hex): the registry binds the serial to it. */
  idevidFingerprint: string;
  /** SHA-256 of the IDevID SubjectPublicKeyInfo DER (hex) */
  idevidSpkiSha256: string;
  /** SHA-256 of the uncompressed image written, or "" when only the block was written. */
  imageSha256: string;
  /** SHA-256 of the factory block bytes */
  blockSha256: string;
  target: string;
}

export const MANIFEST_COLUMNS: readonly (keyof ManifestRecord)[] = [
  'time',
  'serial',
  'hwRev',
  'macs',
  'batch',
  'station',
  'idevidCertSerial',
  'idevidFingerprint',
  'idevidSpkiSha256',
  'imageSha256',
  'blockSha256',
  'target',
];

/** RFC 4180 field: quoted when it holds a comma, quote, CR or LF; leading =+-@ neutralised for spreadsheets. */
export function csvField(v: string): string {
  const safe = /^[=+\-@]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return MANIFEST_COLUMNS.join(',') + '\r\n';
}

export function csvLine(r: ManifestRecord): string {
  return MANIFEST_COLUMNS.map((k) => csvField(k === 'macs' ? r.macs.join(' ') : String(r[k]))).join(',') + '\r\n';
}

export function jsonLine(r: ManifestRecord): string {
  return JSON.stringify(r) + '\n';
}

export interface AllowlistEntry {
  serial: string;
  batch: string;
  idevidFingerprint: string;
}

export function allowlistLine(r: ManifestRecord): string {
  const e: AllowlistEntry = { serial: r.serial, batch: r.batch, idevidFingerprint: r.idevidFingerprint };
  return JSON.stringify(e) + '\n';
}

export interface ManifestFiles {
  csv: string;
  jsonl: string;
  allowlist: string;
}

export function manifestFiles(dir: string, batch: string): ManifestFiles {
  return { csv: join(dir, `${batch}.csv`), jsonl: join(dir, `${batch}.jsonl`), allowlist: join(dir, `${batch}.allowlist.jsonl`) };
}
