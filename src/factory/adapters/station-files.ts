// SPDX-License-Identifier: UNLICENSED
// Small reads the station makes besides the image and the factory region: PEM files named on the
// command line, and sector 0 of a target that gets no new image.
import { readFileSync } from 'node:fs';
import { ConnectorError } from '../../shared/errors.js';
import { readFactoryRegion } from '../../shared/factory-block/block-io.js';

export function readPemFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** Sector 0 (the partition table); empty when the target cannot be read. */
export function readSector0(path: string): Buffer {
  try {
    return readFactoryRegion(path, 0).subarray(0, 512);
  } catch {
    return Buffer.alloc(0);
  }
}
