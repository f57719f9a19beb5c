// SPDX-License-Identifier: UNLICENSED
// Streams an OpenWrt image (raw .img or .img.gz with fwtool trailers) onto a block device or image file,
// hashing what it writes, then fsyncs and reads the bytes back to compare SHA-256. Adapter: file I/O only.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { open as openAsync, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ConnectorError } from '../../shared/errors.js';
import { execSync } from '../../shared/exec.js';
import { fwtoolDataLength } from '../core/fwtool.js';
import type { ImageInfo, WriteResult } from '../core/ports.js';

export function inspectImage(path: string): ImageInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY', `cannot open image ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = fstatSync(fd).size;
    const readAt = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const n = readSync(fd, b, 0, len, pos);
      return b.subarray(0, n);
    };
    const magic = readAt(0, 2);
    return { path, compressed: magic[0] === 0x1f && magic[1] === 0x8b, dataBytes: fwtoolDataLength(size, readAt) };
  } finally {
    closeSync(fd);
  }
}

/** The first `n` bytes of the uncompressed image (for the partition table), without writing anything. */
export async function readImageHead(img: ImageInfo, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  const src = createReadStream(img.path, { start: 0, end: Math.max(0, img.dataBytes - 1) });
  const stream = img.compressed ? src.pipe(createGunzip()) : src;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parts.push(chunk);
      got += chunk.length;
      if (got >= n) break;
    }
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY', `cannot read image ${img.path}: ${(e as Error).message}`, { cause: e });
  } finally {
    src.destroy();
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** Writes the image from byte 0 of the target; a regular-file target is truncated first. */
export async function writeImage(img: ImageInfo, target: string, onProgress: (written: number) => void): Promise<WriteResult> {
  let isFile = true;
  try {
    isFile = statSync(target).isFile();
  } catch {
    isFile = true;
  }
  let fh: FileHandle;
  try {
    fh = await openAsync(target, isFile ? 'w' : 'r+');
  } catch (e) {
    throw new ConnectorError('CK_ERR_FACTORY', `cannot open target ${target} for writing: ${(e as Error).message}`, { cause: e });
  }
  const hash = createHash('sha256');
  let pos = 0;
  try {
    const sink = new Writable({
      highWaterMark: 4 * 1024 * 1024,
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        const at = pos;
        pos += chunk.length;
        fh.write(chunk, 0, chunk.length, at).then(
          () => {
            onProgress(pos);
            cb();
          },
          (e: unknown) => cb(e as Error),
        );
      },
    });
    const src = createReadStream(img.path, { start: 0, end: Math.max(0, img.dataBytes - 1), highWaterMark: 1024 * 1024 });
    try {
      if (img.compressed) await pipeline(src, createGunzip(), sink);
      else await pipeline(src, sink);
    } catch (e) {
      const enospc = (e as NodeJS.ErrnoException).code === 'ENOSPC';
      throw new ConnectorError(
        'CK_ERR_FACTORY',
        `writing ${img.path} to ${target} failed after ${pos} bytes: ${enospc ? 'the target is full (too small for the image)' : (e as Error).message}`,
        { cause: e },
      );
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes: pos, sha256: hash.digest('hex') };
}

/** SHA-256 of the first `bytes` bytes of the target, read after dropping the device's buffer cache. */
export function hashTarget(target: string, bytes: number): string {
  try {
    if (statSync(target).isBlockDevice()) execSync('blockdev', ['--flushbufs', target], true);
  } catch {
    // not fatal: the read-back then may come from the page cache
  }
  const fd = openSync(target, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(4 * 1024 * 1024);
    let pos = 0;
    while (pos < bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    if (pos < bytes) throw new ConnectorError('CK_ERR_FACTORY', `read-back of ${target} ended at ${pos} of ${bytes} bytes`);
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}
