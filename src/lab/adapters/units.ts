// SPDX-License-Identifier: UNLICENSED
// A lab Connector's "eMMC": a sparse 32 MiB file that receives a factory block from
// `connector factory provision`, exactly as at the factory, plus the DC-side steps that follow at a real
// site: import the batch allowlist into the registry and, when the unit is meant to work at once, claim
// it for a tenant.
import { closeSync, openSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { FACTORY_BLOCK_OFFSET } from '../../shared/factory-block/factory-block.js';
import { ConnectorError } from '../../shared/errors.js';
import { updateRegistryFile } from '../../shared/registry/registry-file.js';
import { claimDevice, importAllowlist } from '../../shared/registry/registry.js';
import { factoryProvision } from './tools.js';

/** Size of a lab unit's disk file: the factory region at 24 MiB fits with room to spare. */
export const LAB_UNIT_BYTES = 32 * 1024 * 1024;
export const LAB_BATCH = 'LAB';
export const LAB_STATION = 'lab-station';

export interface LabUnitSpec {
  serial: string;
  /** The unit's disk file; created (or reused: its factory region is overwritten). */
  target: string;
  /** Factory CA directory (factory-ca.{cert,key}.pem) that signs the IDevID. */
  factoryCaDir: string;
  estUrl: string;
  dcAnchorFile: string;
  manifestDir: string;
}

export interface LabUnit {
  serial: string;
  target: string;
  offset: number;
  /** The allowlist file the station appended the unit to. */
  allowlist: string;
  idevidFingerprint: string;
}

/**
 * Writes a factory block for `serial` into the unit's disk file. The file has no partition table (only
 * the gap matters here), which the station rightly refuses without --force; the lab forces past that and
 * past "already provisioned" when a test gives a unit a new identity.
 */
export async function provisionLabUnit(o: LabUnitSpec): Promise<LabUnit> {
  closeSync(openSync(o.target, 'a'));
  truncateSync(o.target, LAB_UNIT_BYTES);
  const report = await factoryProvision({
    serial: o.serial,
    target: o.target,
    batch: LAB_BATCH,
    station: LAB_STATION,
    hwRev: '1.0',
    caDir: o.factoryCaDir,
    estUrl: o.estUrl,
    dcAnchorFile: o.dcAnchorFile,
    manifestDir: o.manifestDir,
    offset: FACTORY_BLOCK_OFFSET,
    force: true,
  });
  if (!report.record || !report.files)
    throw new ConnectorError('CK_ERR_LAB', `provisioning ${o.serial} into ${o.target} wrote no manifest record`);
  return {
    serial: o.serial,
    target: o.target,
    offset: FACTORY_BLOCK_OFFSET,
    allowlist: report.files.allowlist,
    idevidFingerprint: report.record.idevidFingerprint,
  };
}

/** `connector registry import` of the unit's allowlist line, then optionally `registry claim`. */
export async function registerLabUnit(
  registryFile: string,
  unit: Pick<LabUnit, 'serial' | 'allowlist'>,
  now: Date,
  claim?: { tenant: string; segment?: string; site?: string },
): Promise<void> {
  const entries = readFileSync(unit.allowlist, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { serial: string; batch?: string; idevidFingerprint?: string })
    .filter((e) => e.serial === unit.serial);
  await updateRegistryFile(registryFile, (reg) => {
    const imported = importAllowlist(reg, entries, now);
    return claim ? claimDevice(imported, unit.serial, claim.tenant, now, claim.segment, claim.site) : imported;
  });
}

/** The files enrollment writes into an agent's identity directory (a factory reset removes them). */
export const IDENTITY_FILES = ['op.key.pem', 'op.cert.pem', 'dc-ca.pem', 'factory-block.bin'] as const;

export function wipeIdentity(identityDir: string): void {
  for (const f of IDENTITY_FILES) rmSync(join(identityDir, f), { force: true });
}
