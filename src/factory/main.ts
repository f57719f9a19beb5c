// SPDX-License-Identifier: UNLICENSED
// The factory station's wiring, one function per subcommand (`connector factory init-ca|provision|read`):
// picks the real disk, image, CA and manifest adapters for the station core, the clock, the host name
// and the terminal. Nothing runs at import.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConnectorError } from '../shared/errors.js';
import { loggerFromEnv } from '../shared/log.js';
import { certFingerprint } from '../shared/pki/x509.js';
import { FACTORY_BLOCK_OFFSET } from '../shared/factory-block/factory-block.js';
import { readFactoryBlock, readFactoryRegion, writeFactoryRegion } from '../shared/factory-block/block-io.js';
import type { StationPorts } from './core/ports.js';
import { provisionUnit, type ProvisionReport } from './core/provision.js';
import { blockSummaryLines, provisionExitCode, provisionReportLines, summariseBlock } from './core/reports.js';
import { factoryCaExists, factoryCaPaths, initFactoryCa, loadFactoryCa } from './adapters/factory-ca.js';
import { hashTarget, inspectImage, readImageHead, writeImage } from './adapters/image-writer.js';
import { appendManifest } from './adapters/manifest-files.js';
import { readPemFile, readSector0 } from './adapters/station-files.js';
import { DEFAULT_HOST_PATHS, gatherTargetFacts, type HostPaths } from './adapters/target-facts.js';

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** The station's ports on this host. */
export function hostStation(hostPaths: HostPaths = DEFAULT_HOST_PATHS): StationPorts {
  return {
    readAnchor: (file) => readPemFile(file, 'the DC trust anchor'),
    caExists: factoryCaExists,
    loadCa: (dir) => loadFactoryCa(factoryCaPaths(dir)),
    inspectImage,
    readImageHead,
    readSector0,
    targetFacts: (target) => gatherTargetFacts(target, hostPaths),
    readRegion: readFactoryRegion,
    writeRegion: writeFactoryRegion,
    writeImage,
    hashTarget,
    appendManifest,
  };
}

export async function initCa(o: { dir: string; commonName: string; validityYears: number }): Promise<number> {
  const { paths, cert } = await initFactoryCa({
    dir: resolve(o.dir),
    commonName: o.commonName,
    now: new Date(),
    validityYears: o.validityYears,
  });
  out(`factory CA created: ${paths.certFile}`);
  out(`key (keep offline, mode 0600): ${paths.keyFile}`);
  out(`fingerprint sha256: ${certFingerprint(cert)}`);
  out(`give ${paths.certFile} to the EST server (factoryCaFiles)`);
  return 0;
}

/** A progress bar on a terminal, a line per 10% in a log; bytes only when the total is unknown. */
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

export interface ProvisionCommand {
  readonly serial: string;
  readonly target: string;
  readonly image?: string | undefined;
  readonly batch: string;
  /** Default: this host's name. */
  readonly station?: string | undefined;
  readonly hwRev: string;
  readonly macs: readonly string[];
  readonly caDir: string;
  readonly estUrl: string;
  readonly dcAnchor: string;
  readonly manifestDir: string;
  readonly offset: number;
  readonly force: boolean;
  readonly dryRun: boolean;
  readonly json: boolean;
}

export async function provision(o: ProvisionCommand): Promise<number> {
  const report: ProvisionReport = await provisionUnit(
    {
      serial: o.serial,
      target: o.target,
      ...(o.image ? { image: resolve(o.image) } : {}),
      batch: o.batch,
      station:
        o.station ??
        hostname()
          .replace(/[^A-Za-z0-9._-]/g, '-')
          .slice(0, 64),
      hwRev: o.hwRev,
      macs: o.macs.map((m) => m.toLowerCase()),
      caDir: resolve(o.caDir),
      estUrl: o.estUrl,
      dcAnchorFile: resolve(o.dcAnchor),
      manifestDir: resolve(o.manifestDir),
      offset: o.offset,
      force: o.force,
      dryRun: o.dryRun,
      now: () => new Date(),
      log: loggerFromEnv(process.env, { component: 'factory' }),
      onProgress: progressPrinter(),
    },
    hostStation(),
  );
  if (o.json) out(JSON.stringify(report, null, 2));
  else for (const l of provisionReportLines(report)) out(l);
  return provisionExitCode(report);
}

/** Dumps and checks a factory block: exit 0 valid, 1 invalid. */
export function readBlock(o: { target: string; offset?: number | undefined; ca?: string | undefined; json: boolean }): number {
  const offset = o.offset ?? FACTORY_BLOCK_OFFSET;
  const r = readFactoryBlock(o.target, offset);
  if (!r.ok) {
    throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `no valid factory block in ${o.target} at ${offset}: ${r.reason}: ${r.detail}`);
  }
  const summary = summariseBlock(r.data, r, o.ca ? { file: o.ca, pem: readPemFile(o.ca, 'CA') } : undefined);
  if (o.json) out(JSON.stringify(summary, null, 2));
  else for (const l of blockSummaryLines(summary)) out(l);
  return summary.valid ? 0 : 1;
}
