// SPDX-License-Identifier: UNLICENSED
// `connector factory init-ca | provision | read`: the factory station (docs/provisioning.md).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConnectorError, UsageError } from '../../shared/errors.js';
import { loggerFromEnv } from '../../shared/log.js';
import { initFactoryCa } from '../../factory/adapters/factory-ca.js';
import { FACTORY_BLOCK_OFFSET } from '../../shared/factory-block/factory-block.js';
import { readFactoryBlock } from '../../shared/factory-block/block-io.js';
import { checkFactoryData, idevidIssuedBy } from '../../shared/factory-block/verify.js';
import { provisionUnit } from '../../factory/adapters/station.js';
import { certFingerprint } from '../../shared/pki/x509.js';
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';

const HELP = `usage: connector factory <init-ca|provision|read> [options]

  init-ca    --dir DIR [--cn NAME] [--years N]
             create the factory CA (P-256): DIR/factory-ca.cert.pem and DIR/factory-ca.key.pem (0600)
  provision  --serial S --target PATH --batch B --ca-dir DIR --est-url URL --dc-anchor FILE
             [--image FILE.img[.gz]] [--station ST] [--hw-rev R] [--mac aa:bb:..]... [--manifest-dir DIR]
             [--offset BYTES] [--force] [--dry-run] [--json]
             write the image (verified by read-back SHA-256), then the factory block, then the manifest
  read       --target PATH [--offset BYTES] [--ca FILE] [--json]
             dump and verify a factory block (the IDevID key is never printed)

  --offset defaults to ${FACTORY_BLOCK_OFFSET} (24 MiB). Exit 0 ok, 1 refused/invalid, 2 usage.`;

function out(line: string): void {
  process.stdout.write(line + '\n');
}

function offsetOf(p: ReturnType<typeof parseCommandArgs>): number {
  const s = str(p, 'offset');
  if (s === undefined) return FACTORY_BLOCK_OFFSET;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 512 || n % 512 !== 0) throw new UsageError(`--offset must be a positive multiple of 512 bytes, not "${s}"`);
  return n;
}

async function initCa(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, cn: { type: 'string' }, years: { type: 'string' } }, false);
  if (p.help) return help();
  const years = Number(str(p, 'years') ?? '25');
  if (!Number.isInteger(years) || years < 1 || years > 100) throw new UsageError('--years must be 1..100');
  const { paths, cert } = await initFactoryCa({
    dir: resolve(requireStr(p, 'dir')),
    commonName: str(p, 'cn') ?? 'Connector Factory CA',
    now: new Date(),
    validityYears: years,
  });
  out(`factory CA created: ${paths.certFile}`);
  out(`key (keep offline, mode 0600): ${paths.keyFile}`);
  out(`fingerprint sha256: ${certFingerprint(cert)}`);
  out(`give ${paths.certFile} to the EST server (factoryCaFiles)`);
  return 0;
}

function progressPrinter(): (written: number, total: number | undefined) => void {
  const tty = process.stderr.isTTY === true;
  let lastPct = -1;
  let lastMiB = -64;
  return (written, total) => {
    const mib = written / 1048576;
    if (total) {
      const pct = Math.min(100, Math.floor((written / total) * 100));
      if (pct === lastPct) return;
      lastPct = pct;
      const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
      const line = `[${bar}] ${String(pct).padStart(3)}% ${mib.toFixed(1)}/${(total / 1048576).toFixed(1)} MiB`;
      if (tty) process.stderr.write(`\r${line}${pct === 100 ? '\n' : ''}`);
      else if (pct % 10 === 0) process.stderr.write(line + '\n');
    } else if (mib - lastMiB >= 64) {
      lastMiB = mib;
      process.stderr.write(`${mib.toFixed(0)} MiB written\n`);
    }
  };
}

async function provision(argv: string[]): Promise<number> {
  const p = parseCommandArgs(
    argv,
    {
      serial: { type: 'string' },
      target: { type: 'string' },
      image: { type: 'string' },
      batch: { type: 'string' },
      station: { type: 'string' },
      'hw-rev': { type: 'string' },
      mac: { type: 'string', multiple: true },
      'ca-dir': { type: 'string' },
      'est-url': { type: 'string' },
      'dc-anchor': { type: 'string' },
      'manifest-dir': { type: 'string' },
      offset: { type: 'string' },
      force: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    false,
  );
  if (p.help) return help();
  const macs = (p.values['mac'] as string[] | undefined) ?? [];
  const image = str(p, 'image');
  const report = await provisionUnit({
    serial: requireStr(p, 'serial'),
    target: requireStr(p, 'target'),
    ...(image ? { image: resolve(image) } : {}),
    batch: requireStr(p, 'batch'),
    station: str(p, 'station') ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64),
    hwRev: str(p, 'hw-rev') ?? '1.0',
    macs: macs.map((m) => m.toLowerCase()),
    caDir: resolve(requireStr(p, 'ca-dir')),
    estUrl: requireStr(p, 'est-url'),
    dcAnchorFile: resolve(requireStr(p, 'dc-anchor')),
    manifestDir: resolve(str(p, 'manifest-dir') ?? '.'),
    offset: offsetOf(p),
    force: flag(p, 'force'),
    dryRun: flag(p, 'dry-run'),
    now: () => new Date(),
    log: loggerFromEnv(process.env, { component: 'factory' }),
    onProgress: progressPrinter(),
  });
  if (flag(p, 'json')) {
    out(JSON.stringify(report, null, 2));
  } else {
    out(report.dryRun ? 'dry run: nothing written. Would do:' : 'done:');
    for (const l of report.plan) out(`  ${l}`);
    for (const pr of report.problems) out(`  ${report.dryRun ? 'REFUSE' : 'FORCED'} [${pr.code}] ${pr.message}`);
    if (report.record) {
      out(`serial ${report.record.serial}  IDevID sha256 ${report.record.idevidFingerprint}`);
      if (report.files) out(`manifest: ${report.files.csv}, ${report.files.jsonl}; allowlist for the DC: ${report.files.allowlist}`);
    }
  }
  return report.dryRun && report.problems.length > 0 && !report.forced ? 1 : 0;
}

async function read(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { target: { type: 'string' }, offset: { type: 'string' }, ca: { type: 'string' }, json: { type: 'boolean' } }, false);
  if (p.help) return help();
  const target = requireStr(p, 'target');
  const r = readFactoryBlock(target, offsetOf(p));
  if (!r.ok) {
    throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `no valid factory block in ${target} at ${offsetOf(p)}: ${r.reason}: ${r.detail}`);
  }
  const d = r.data;
  const problems: string[] = [];
  const semantic = checkFactoryData(d);
  if (semantic) problems.push(semantic);
  const caFile = str(p, 'ca');
  if (caFile && !idevidIssuedBy(d, readFileSync(caFile, 'utf8'))) problems.push(`the IDevID is not issued by the CA in ${caFile}`);
  const leaf = new X509Certificate(d.idevidChainPem);
  const anchor = new X509Certificate(d.dcAnchorPem);
  const summary = {
    valid: problems.length === 0,
    problems,
    serial: d.serial,
    hwRev: d.hwRev,
    macs: d.macs,
    estUrl: d.estUrl,
    batch: d.batch,
    station: d.station,
    createdAt: d.createdAt,
    idevid: { subject: leaf.subject.replace(/\n/g, ', '), issuer: leaf.issuer.replace(/\n/g, ', '), fingerprint: certFingerprint(leaf), notAfter: leaf.validTo },
    dcAnchor: { subject: anchor.subject.replace(/\n/g, ', '), fingerprint: certFingerprint(anchor) },
    blockBytes: r.length,
    blockSha256: r.checksum,
  };
  if (flag(p, 'json')) out(JSON.stringify(summary, null, 2));
  else {
    out(`factory block ${summary.valid ? 'OK' : 'INVALID'} (${r.length} bytes, sha256 ${r.checksum})`);
    for (const [k, v] of Object.entries(summary)) if (k !== 'valid' && k !== 'problems') out(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    for (const pr of problems) out(`  problem: ${pr}`);
  }
  return summary.valid ? 0 : 1;
}

function help(): number {
  out(HELP);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('factory', argv, HELP, { 'init-ca': initCa, provision, read });
}
