// SPDX-License-Identifier: UNLICENSED
// What the station needs from the outside world: the image file, the target disk, the factory CA and
// the manifest files. adapters/ implement it; main.ts wires the real ones.
import type { Issuer } from '../../shared/pki/x509.js';
import type { ManifestFiles, ManifestRecord } from './batch-manifest.js';
import type { TargetFacts } from './target-checks.js';

export interface ImageInfo {
  path: string;
  compressed: boolean;
  /** Bytes of image data in the file (fwtool trailers excluded). */
  dataBytes: number;
}

export interface WriteResult {
  bytes: number;
  sha256: string;
}

export interface StationPorts {
  /** The DC trust anchor's PEM text. */
  readAnchor(file: string): string;
  /** Whether `caDir` holds a factory CA (certificate and key). */
  caExists(caDir: string): boolean;
  loadCa(caDir: string): Promise<Issuer>;
  inspectImage(path: string): ImageInfo;
  /** The first `n` bytes of the uncompressed image. */
  readImageHead(img: ImageInfo, n: number): Promise<Buffer>;
  /** Sector 0 of the target; empty when it cannot be read. */
  readSector0(target: string): Buffer;
  targetFacts(target: string): TargetFacts;
  /** The factory region at `offset` (short when the target ends early). */
  readRegion(target: string, offset: number): Buffer;
  writeRegion(target: string, offset: number, block: Buffer): void;
  writeImage(img: ImageInfo, target: string, onProgress: (written: number) => void): Promise<WriteResult>;
  /** SHA-256 of the first `bytes` bytes of the target, read back from the device. */
  hashTarget(target: string, bytes: number): string;
  appendManifest(dir: string, record: ManifestRecord): ManifestFiles;
}
