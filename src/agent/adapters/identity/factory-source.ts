// SPDX-License-Identifier: UNLICENSED
// Where the device gets its factory data: the raw block on the eMMC (or a file in the lab), with the
// copy under identity_dir as a fallback. A blank region is rewritten from the copy (a full-disk
// sysupgrade after a layout change zeroes the gap); a region holding someone else's data is left alone.
import { existsSync, readFileSync } from 'node:fs';
import { ConnectorError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import { decodeFactoryBlock, type DecodeResult, type FactoryData } from '../../../shared/factory-block/factory-block.js';
import { readFactoryRegion, writeFactoryRegion } from '../../../shared/factory-block/block-io.js';
import { checkFactoryData } from '../../../shared/factory-block/verify.js';
import { identityPaths, writeFileAtomic } from './store.js';

export interface FactorySourceOptions {
  path: string;
  offset: number;
  identityDir: string;
  log: Logger;
}

export interface FactorySource {
  data: FactoryData;
  from: 'block' | 'copy';
  repaired: boolean;
}

export function loadFactorySource(o: FactorySourceOptions): FactorySource {
  const copyFile = identityPaths(o.identityDir).factoryCopy;
  let region: Buffer | undefined;
  let onDisk: DecodeResult;
  try {
    region = readFactoryRegion(o.path, o.offset);
    onDisk = decodeFactoryBlock(region);
  } catch (e) {
    onDisk = { ok: false, reason: 'bad-length', detail: (e as Error).message };
  }
  if (onDisk.ok) {
    const problem = checkFactoryData(onDisk.data);
    if (problem) throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `factory block at ${o.path}@${o.offset}: ${problem}`);
    const bytes = region?.subarray(0, onDisk.length);
    if (bytes && (!existsSync(copyFile) || !readFileSync(copyFile).equals(bytes))) {
      writeFileAtomic(copyFile, bytes, 0o600);
      o.log.info('factory block copied to identity dir', { file: copyFile, serial: onDisk.data.serial });
    }
    return { data: onDisk.data, from: 'block', repaired: false };
  }
  const copy = existsSync(copyFile) ? readFileSync(copyFile) : undefined;
  const fromCopy = copy ? decodeFactoryBlock(copy) : undefined;
  if (!copy || !fromCopy?.ok) {
    throw new ConnectorError(
      'CK_ERR_FACTORY_BLOCK',
      `no usable factory block: ${o.path}@${o.offset}: ${onDisk.ok ? '' : onDisk.detail}; copy ${copyFile}: ${fromCopy && !fromCopy.ok ? fromCopy.detail : 'missing'}. The unit needs re-provisioning at the factory station`,
    );
  }
  const problem = checkFactoryData(fromCopy.data);
  if (problem) throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `factory block copy ${copyFile}: ${problem}`);
  // Only rewrite a region that is blank or holds a damaged block of ours; never overwrite foreign data.
  const ours =
    onDisk.reason === 'empty' || onDisk.reason === 'bad-checksum' || onDisk.reason === 'bad-payload' || onDisk.reason === 'bad-version';
  let repaired = false;
  if (region !== undefined && ours) {
    try {
      writeFactoryRegion(o.path, o.offset, copy.subarray(0, fromCopy.length));
      repaired = true;
      o.log.warn('factory block was missing on disk; rewritten from the identity-dir copy', {
        path: o.path,
        offset: o.offset,
        was: onDisk.reason,
      });
    } catch (e) {
      o.log.warn('cannot rewrite the factory block; using the copy', { path: o.path, error: (e as Error).message });
    }
  } else {
    o.log.warn('factory block unreadable; using the identity-dir copy', { path: o.path, reason: onDisk.reason, detail: onDisk.detail });
  }
  return { data: fromCopy.data, from: 'copy', repaired };
}
