// SPDX-License-Identifier: UNLICENSED
// What the station prints: the outcome of `provision` and the dump of a factory block (`read`), which
// never includes the IDevID key. Pure: decoded data in, a summary and lines of text out.
import { X509Certificate } from 'node:crypto';
import { certFingerprint } from '../../shared/pki/x509.js';
import type { FactoryData } from '../../shared/factory-block/factory-block.js';
import { checkFactoryData, idevidIssuedBy } from '../../shared/factory-block/verify.js';
import type { ProvisionReport } from './provision.js';

export function provisionReportLines(report: ProvisionReport): string[] {
  const lines = [report.dryRun ? 'dry run: nothing written. Would do:' : 'done:'];
  for (const l of report.plan) lines.push(`  ${l}`);
  for (const pr of report.problems) lines.push(`  ${report.dryRun ? 'REFUSE' : 'FORCED'} [${pr.code}] ${pr.message}`);
  if (report.record) {
    lines.push(`serial ${report.record.serial}  IDevID sha256 ${report.record.idevidFingerprint}`);
    if (report.files) lines.push(`manifest: ${report.files.csv}, ${report.files.jsonl}; allowlist for the DC: ${report.files.allowlist}`);
  }
  return lines;
}

/** Exit code of `provision`: a dry run that found problems (and was not forced) is a refusal. */
export function provisionExitCode(report: ProvisionReport): number {
  return report.dryRun && report.problems.length > 0 && !report.forced ? 1 : 0;
}

export interface BlockSummary {
  valid: boolean;
  problems: string[];
  serial: string;
  hwRev: string;
  macs: string[];
  estUrl: string;
  batch: string;
  station: string;
  createdAt: string;
  idevid: { subject: string; issuer: string; fingerprint: string; notAfter: string };
  dcAnchor: { subject: string; fingerprint: string };
  blockBytes: number;
  blockSha256: string;
}

/** Checks a decoded block (key matches certificate; optionally, the IDevID chains to `ca`). */
export function summariseBlock(
  d: FactoryData,
  block: { length: number; checksum: string },
  ca?: { file: string; pem: string },
): BlockSummary {
  const problems: string[] = [];
  const semantic = checkFactoryData(d);
  if (semantic) problems.push(semantic);
  if (ca && !idevidIssuedBy(d, ca.pem)) problems.push(`the IDevID is not issued by the CA in ${ca.file}`);
  const leaf = new X509Certificate(d.idevidChainPem);
  const anchor = new X509Certificate(d.dcAnchorPem);
  return {
    valid: problems.length === 0,
    problems,
    serial: d.serial,
    hwRev: d.hwRev,
    macs: d.macs,
    estUrl: d.estUrl,
    batch: d.batch,
    station: d.station,
    createdAt: d.createdAt,
    idevid: {
      subject: leaf.subject.replace(/\n/g, ', '),
      issuer: leaf.issuer.replace(/\n/g, ', '),
      fingerprint: certFingerprint(leaf),
      notAfter: leaf.validTo,
    },
    dcAnchor: { subject: anchor.subject.replace(/\n/g, ', '), fingerprint: certFingerprint(anchor) },
    blockBytes: block.length,
    blockSha256: block.checksum,
  };
}

export function blockSummaryLines(s: BlockSummary): string[] {
  const lines = [`factory block ${s.valid ? 'OK' : 'INVALID'} (${s.blockBytes} bytes, sha256 ${s.blockSha256})`];
  for (const [k, v] of Object.entries(s))
    if (k !== 'valid' && k !== 'problems') lines.push(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  for (const pr of s.problems) lines.push(`  problem: ${pr}`);
  return lines;
}
