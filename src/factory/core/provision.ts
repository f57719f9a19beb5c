// SPDX-License-Identifier: UNLICENSED
// `connector factory provision`: image -> target (verified by read-back), then the factory block in the
// gap before p1, then one manifest line. Refuses unsafe targets unless forced; --dry-run only plans.
// The IDevID key exists only in memory and in the unit's factory block: the station never stores it.
// The disk, the image, the CA and the manifest files are ports (ports.ts); the decisions are here.
import { createHash, X509Certificate } from 'node:crypto';
import { ConnectorError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { certFingerprint } from '../../shared/pki/x509.js';
import { isValidSerial } from '../../shared/registry/registry.js';
import {
  decodeFactoryBlock,
  encodeFactoryBlock,
  FACTORY_BLOCK_OFFSET,
  FACTORY_REGION_SIZE,
  type FactoryData,
} from '../../shared/factory-block/factory-block.js';
import { checkFactoryData } from '../../shared/factory-block/verify.js';
import type { ManifestFiles, ManifestRecord } from './batch-manifest.js';
import { issueIdevid } from './idevid.js';
import { parseMbr, type MbrResult } from './mbr.js';
import type { StationPorts } from './ports.js';
import { targetProblems, type TargetProblem } from './target-checks.js';

export interface ProvisionOptions {
  serial: string;
  target: string;
  image?: string;
  batch: string;
  station: string;
  hwRev: string;
  macs: readonly string[];
  /** Directory holding factory-ca.cert.pem and factory-ca.key.pem. */
  caDir: string;
  estUrl: string;
  /** PEM file: the DC trust anchor written into the block. */
  dcAnchorFile: string;
  manifestDir: string;
  offset?: number;
  force: boolean;
  dryRun: boolean;
  now: () => Date;
  log: Logger;
  /** Bytes written so far, and the expected total when the partition table tells it. */
  onProgress?: (written: number, total: number | undefined) => void;
}

export type LayoutProblem = {
  code: 'no-partition-table' | 'gpt' | 'overlaps-partition' | 'region-in-use' | 'already-provisioned';
  message: string;
};
export type Problem = TargetProblem | LayoutProblem;

export interface ProvisionReport {
  dryRun: boolean;
  plan: string[];
  problems: Problem[];
  forced: boolean;
  record?: ManifestRecord;
  files?: ManifestFiles;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function validate(o: ProvisionOptions): void {
  const bad = (what: string): never => {
    throw new ConnectorError('CK_ERR_FACTORY', what);
  };
  if (!isValidSerial(o.serial)) bad(`serial "${o.serial}" must be 1-64 letters, digits, ., _ or -`);
  if (!NAME_RE.test(o.batch)) bad(`batch "${o.batch}" must be 1-64 letters, digits, ., _ or - (it names the manifest files)`);
  if (!NAME_RE.test(o.station)) bad(`station "${o.station}" must be 1-64 letters, digits, ., _ or -`);
  for (const m of o.macs) if (!MAC_RE.test(m)) bad(`MAC "${m}" must be lowercase aa:bb:cc:dd:ee:ff`);
  let u: URL | undefined;
  try {
    u = new URL(o.estUrl);
  } catch {
    bad(`EST URL "${o.estUrl}" is not a URL`);
  }
  if (u?.protocol !== 'https:') bad(`EST URL "${o.estUrl}" must be https://`);
  const offset = o.offset ?? FACTORY_BLOCK_OFFSET;
  if (!Number.isInteger(offset) || offset < 512 || offset % 512 !== 0) bad(`offset ${offset} must be a positive multiple of 512`);
}

function layoutProblems(mbr: MbrResult, offset: number): LayoutProblem[] {
  if (!mbr.ok)
    return [{ code: 'no-partition-table', message: `no MBR partition table (${mbr.reason}): cannot prove the gap at ${offset} is free` }];
  if (mbr.protectiveGpt) return [{ code: 'gpt', message: 'GPT disk: the OpenWrt rockchip layout is MBR; the gap is not known to be free' }];
  const out: LayoutProblem[] = [];
  for (const p of mbr.partitions) {
    if (p.startByte < offset + FACTORY_REGION_SIZE && p.startByte + p.sizeBytes > offset) {
      out.push({
        code: 'overlaps-partition',
        message: `partition ${p.index} (${p.startByte}..${p.startByte + p.sizeBytes}) overlaps the factory region ${offset}..${offset + FACTORY_REGION_SIZE}`,
      });
    }
  }
  return out;
}

export async function provisionUnit(o: ProvisionOptions, io: StationPorts): Promise<ProvisionReport> {
  validate(o);
  const offset = o.offset ?? FACTORY_BLOCK_OFFSET;
  const anchorPem = io.readAnchor(o.dcAnchorFile);
  try {
    new X509Certificate(anchorPem);
  } catch {
    throw new ConnectorError('CK_ERR_FACTORY', `${o.dcAnchorFile} holds no PEM certificate (the DC trust anchor)`);
  }
  if (!io.caExists(o.caDir)) {
    throw new ConnectorError('CK_ERR_FACTORY', `no factory CA in ${o.caDir}; run 'connector factory init-ca --dir ${o.caDir}'`);
  }

  const img = o.image ? io.inspectImage(o.image) : undefined;
  const head = img ? await io.readImageHead(img, 512) : io.readSector0(o.target);
  const mbr = parseMbr(head);
  const imageEnd = img && mbr.ok ? Math.max(0, ...mbr.partitions.map((p) => p.startByte + p.sizeBytes)) : 0;
  const minBytes = Math.max(imageEnd, offset + FACTORY_REGION_SIZE);
  const facts = io.targetFacts(o.target);
  const problems: Problem[] = [...targetProblems(facts, { minBytes, fileMayGrow: img !== undefined }), ...layoutProblems(mbr, offset)];
  if (!img && facts.kind === 'missing') {
    throw new ConnectorError('CK_ERR_FACTORY', `target ${o.target} does not exist; give --image to create it`);
  }
  if (!img && facts.kind !== 'missing') {
    const existing = decodeFactoryBlock(io.readRegion(o.target, offset));
    if (existing.ok)
      problems.push({ code: 'already-provisioned', message: `${o.target} already holds the factory block of ${existing.data.serial}` });
    else if (existing.reason !== 'empty')
      problems.push({ code: 'region-in-use', message: `bytes at ${offset} are not blank (${existing.detail})` });
  }
  const plan = [
    `target ${facts.path} (${facts.kind}, ${facts.sizeBytes} bytes${facts.mountedAt.length ? `, mounted at ${facts.mountedAt.join(' ')}` : ''})`,
    img
      ? `write image ${img.path} (${img.compressed ? 'gzip' : 'raw'}, ${img.dataBytes} bytes in file${imageEnd ? `, partitions end at ${imageEnd}` : ''}), fsync, verify by read-back SHA-256`
      : 'keep the existing image',
    mbr.ok
      ? `partitions: ${mbr.partitions.map((p) => `p${p.index}@${p.startByte / 1048576}MiB+${Math.round(p.sizeBytes / 1048576)}MiB`).join(' ')}`
      : 'partitions: none found',
    `factory block for ${o.serial} (hw ${o.hwRev}) at byte ${offset} (${offset / 1048576} MiB), region ${FACTORY_REGION_SIZE} bytes`,
    `IDevID from the factory CA in ${o.caDir}; EST ${o.estUrl}`,
    `manifest ${o.manifestDir}/${o.batch}.{csv,jsonl,allowlist.jsonl}`,
  ];
  if (o.dryRun) return { dryRun: true, plan, problems, forced: o.force };
  if (problems.length > 0 && !o.force) {
    throw new ConnectorError(
      'CK_ERR_FACTORY',
      `refusing to provision ${o.target}:\n  ${problems.map((p) => p.message).join('\n  ')}\n(--force overrides)`,
    );
  }
  for (const p of problems) o.log.warn('forced past a safety check', { code: p.code, detail: p.message });

  let imageSha256 = '';
  if (img) {
    o.log.info('writing image', { image: img.path, target: o.target });
    const w = await io.writeImage(img, o.target, (n) => o.onProgress?.(n, imageEnd || undefined));
    const back = io.hashTarget(o.target, w.bytes);
    if (back !== w.sha256) {
      throw new ConnectorError('CK_ERR_FACTORY', `read-back verification failed on ${o.target}: wrote ${w.sha256}, read ${back}`);
    }
    imageSha256 = w.sha256;
    o.log.info('image verified', { bytes: w.bytes, sha256: w.sha256 });
    // the image itself must leave the gap blank, or its layout is not the one this offset was chosen for
    const gap = decodeFactoryBlock(io.readRegion(o.target, offset));
    if (!gap.ok && gap.reason !== 'empty' && !o.force) {
      throw new ConnectorError(
        'CK_ERR_FACTORY',
        `the image has data at byte ${offset} (${gap.detail}); its layout differs from OpenWrt rockchip`,
      );
    }
  }

  const ca = await io.loadCa(o.caDir);
  const now = o.now();
  const idevid = await issueIdevid(ca, o.serial, o.hwRev, now);
  const data: FactoryData = {
    serial: o.serial,
    hwRev: o.hwRev,
    macs: [...o.macs],
    idevidChainPem: idevid.chainPem,
    idevidKeyPem: idevid.keyPem,
    estUrl: o.estUrl,
    dcAnchorPem: anchorPem,
    batch: o.batch,
    station: o.station,
    createdAt: now.toISOString(),
  };
  const block = encodeFactoryBlock(data);
  io.writeRegion(o.target, offset, block);
  const back = decodeFactoryBlock(io.readRegion(o.target, offset));
  if (!back.ok || !io.readRegion(o.target, offset).subarray(0, block.length).equals(block)) {
    throw new ConnectorError(
      'CK_ERR_FACTORY_BLOCK',
      `factory block read-back failed on ${o.target}: ${back.ok ? 'bytes differ' : back.detail}`,
    );
  }
  const semantic = checkFactoryData(back.data);
  if (semantic) throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `factory block on ${o.target}: ${semantic}`);

  const spki = new X509Certificate(idevid.cert.toString('pem')).publicKey.export({ type: 'spki', format: 'der' });
  const record: ManifestRecord = {
    time: now.toISOString(),
    serial: o.serial,
    hwRev: o.hwRev,
    macs: [...o.macs],
    batch: o.batch,
    station: o.station,
    idevidCertSerial: idevid.cert.serialNumber,
    idevidFingerprint: certFingerprint(idevid.cert),
    idevidSpkiSha256: createHash('sha256').update(spki).digest('hex'),
    imageSha256,
    blockSha256: createHash('sha256').update(block).digest('hex'),
    target: facts.path,
  };
  const files = io.appendManifest(o.manifestDir, record);
  o.log.info('unit provisioned', { serial: o.serial, fingerprint: record.idevidFingerprint, batch: o.batch });
  return { dryRun: false, plan, problems, forced: o.force && problems.length > 0, record, files };
}
