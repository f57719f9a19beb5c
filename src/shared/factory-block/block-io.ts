// SPDX-License-Identifier: UNLICENSED
// Reads and writes the factory region of a disk or image file at a raw byte offset. Thin adapter: the
// codec is in factory-block.ts. Used by the factory station and by the agent (block repair).
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { ConnectorError } from '../errors.js';
import { FACTORY_REGION_SIZE, decodeFactoryBlock, type DecodeResult } from './factory-block.js';

/** The whole region (short when the file ends early; a missing file is an error). */
export function readFactoryRegion(path: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `cannot open ${path} to read the factory block: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    const buf = Buffer.alloc(FACTORY_REGION_SIZE);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export function readFactoryBlock(path: string, offset: number): DecodeResult {
  return decodeFactoryBlock(readFactoryRegion(path, offset));
}

/** Writes the block and zeroes the rest of the region, then fsyncs; never touches bytes outside it. */
export function writeFactoryRegion(path: string, offset: number, block: Buffer): void {
  if (block.length > FACTORY_REGION_SIZE) throw new RangeError('factory block larger than its region');
  const region = Buffer.alloc(FACTORY_REGION_SIZE);
  block.copy(region, 0);
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY_BLOCK', `cannot open ${path} to write the factory block: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    let done = 0;
    while (done < region.length) done += writeSync(fd, region, done, region.length - done, offset + done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
