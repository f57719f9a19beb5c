// SPDX-License-Identifier: UNLICENSED
// Checks what `make image` left in BIN_DIR before anything is published: the sysupgrade image exists, the
// IB's sha256sums lists it with the right hash, its fwtool metadata names the board, and the partition
// table inside is the rockchip layout with our fixed ROOTFS_PARTSIZE. The IB can "succeed" without an
// image (size warnings), so none of this is taken on trust.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { exec } from '../../shared/exec.js';
import type { BoardConfig } from '../core/board.js';
import { ImageError } from '../core/errors.js';
import { digestFile } from './fetcher.js';
import { dropFwSignatures, readFwMetadata, type FwMetadata } from '../core/fw-metadata.js';
import type { OpenWrtSeries } from '../core/series.js';
import type { Logger } from '../../shared/log.js';
import { checkRockchipLayout, parseSfdiskJson } from '../core/partition-layout.js';
import { parseSha256Sums } from '../core/sha256sums.js';

export interface CheckedImage {
  readonly path: string;
  readonly file: string;
  readonly sha256: string;
  readonly size: number;
  readonly metadata: FwMetadata;
}

export function sysupgradeName(board: BoardConfig, names: readonly string[]): string | undefined {
  const suffix = `-${board.target.replace('/', '-')}-${board.profile}-squashfs-sysupgrade.img.gz`;
  const hits = names.filter((n) => n.endsWith(suffix));
  return hits.length === 1 ? hits[0] : undefined;
}

/** Only the first 64 KiB of the decompressed image are needed for the partition table. */
async function readPartitionTable(imageGz: string, payloadLength: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ck-mbr-'));
  try {
    const head = join(dir, 'head.img');
    const gunzip = createGunzip();
    const out = createWriteStream(head);
    let written = 0;
    const limit = 1024 * 1024;
    await pipeline(
      createReadStream(imageGz, { end: payloadLength - 1 }),
      gunzip,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          if (written >= limit) break;
          written += chunk.length;
          yield chunk;
        }
      },
      out,
    ).catch((e: unknown) => {
      // Stopping early closes the gunzip stream; that is not an error.
      if (written < 512) throw e;
    });
    const r = await exec('sfdisk', ['-J', head], { allowFailure: true });
    if (r.code !== 0) throw new ImageError('image-layout', `sfdisk found no partition table in ${imageGz}: ${r.stderr.trim()}`);
    return r.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function checkBuildResult(binDir: string, board: BoardConfig): Promise<CheckedImage> {
  let names: string[];
  try {
    names = await readdir(binDir);
  } catch {
    throw new ImageError('image-missing', `ImageBuilder left no output directory ${binDir}`);
  }
  const file = sysupgradeName(board, names);
  if (!file) {
    throw new ImageError(
      'image-missing',
      `no single *-${board.profile}-squashfs-sysupgrade.img.gz in ${binDir} (found: ${names.join(', ') || 'nothing'}); the ImageBuilder printed no known error, see its log`,
    );
  }
  const path = join(binDir, file);
  let sumsText: string;
  try {
    sumsText = await readFile(join(binDir, 'sha256sums'), 'utf8');
  } catch {
    throw new ImageError('image-checksum', `ImageBuilder wrote no sha256sums in ${binDir}`);
  }
  const listed = parseSha256Sums(sumsText).get(file);
  if (!listed) throw new ImageError('image-checksum', `${file} is not listed in ${binDir}/sha256sums`);
  const d = await digestFile(path);
  if (d.sha256 !== listed) throw new ImageError('image-checksum', `${file}: sha256 ${d.sha256} does not match sha256sums (${listed})`);

  // The trailer sits in the last few KiB; reading the whole file is simplest and images are < 1 GiB.
  const fh = await open(path, 'r');
  let bytes: Buffer;
  try {
    bytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  const md = readFwMetadata(bytes);
  if (!md.ok)
    throw new ImageError('image-board', `${file} has no valid fwtool metadata trailer (${md.problem}); sysupgrade would refuse it`);
  const devices = md.metadata.supported_devices ?? [];
  if (!Array.isArray(devices) || !devices.includes(board.boardName)) {
    throw new ImageError(
      'image-board',
      `${file} metadata names ${JSON.stringify(devices)}, not ${board.boardName}: wrong profile or ImageBuilder`,
    );
  }
  const problems = checkRockchipLayout(parseSfdiskJson(await readPartitionTable(path, md.payloadLength)), {
    kernelPartsizeMib: board.kernelPartsizeMib,
    rootfsPartsizeMib: board.rootfsPartsizeMib,
  });
  if (problems.length > 0)
    throw new ImageError('image-layout', `${file}: partition layout is not the rockchip layout: ${problems.join('; ')}`);
  return { path, file, sha256: d.sha256, size: d.size, metadata: md.metadata };
}

/**
 * Drops the fwtool signature block a 24.10 ImageBuilder appends with the random `key-build` it makes on
 * each unpack (nothing trusts that key; the kit signs its releases itself), so equal inputs give equal
 * image bytes. Runs after checkBuildResult has matched the signed bytes against the IB's sha256sums;
 * rewrites the image in place and returns its new hash. A block on a series that should not sign is
 * dropped too, with a warning.
 */
export async function dropImageSignatures(image: CheckedImage, series: OpenWrtSeries, log: Logger): Promise<CheckedImage> {
  const { bytes, dropped } = dropFwSignatures(await readFile(image.path));
  if (dropped === 0) return image;
  const fields = { file: image.file, blocks: dropped, series: series.series };
  if (series.ibSignsImagesWithRandomKey) log.info('dropped the ImageBuilder build-key signature from the image', fields);
  else log.warn('the ImageBuilder signed the image although this series should not; signature dropped', fields);
  const md = readFwMetadata(bytes);
  if (!md.ok) throw new ImageError('image-board', `${image.file}: no valid metadata after dropping its signature (${md.problem})`);
  await writeFile(image.path, bytes);
  return { ...image, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, metadata: md.metadata };
}
