// SPDX-License-Identifier: UNLICENSED
// `connector release manifest|sign`: the manifest composed from the artifacts' bytes, and the comment a
// signature carries. Pure: bytes and time in, manifest text out.
import { createHash } from 'node:crypto';
import {
  encodeReleaseManifest,
  parseReleaseManifest,
  type ArtifactKind,
  type ReleaseArtifact,
  type ReleaseManifest,
} from '../../shared/ota/manifest.js';

export interface ArtifactInput {
  readonly kind: ArtifactKind;
  /** File name on the device; no directories. */
  readonly name: string;
  readonly data: Buffer;
  readonly urls: readonly string[];
}

export interface ReleaseDraft {
  readonly version: string;
  readonly board: string;
  readonly minVersion?: string | undefined;
  readonly osCompatVersion?: string | undefined;
  readonly notes?: string | undefined;
  readonly createdAt: Date;
  readonly artifacts: readonly ArtifactInput[];
}

/** The manifest as it is signed: validated by the same parser the devices use, then encoded. */
export function composeRelease(d: ReleaseDraft): { manifest: ReleaseManifest; text: string } {
  const artifacts: ReleaseArtifact[] = d.artifacts.map((a) => ({
    kind: a.kind,
    name: a.name,
    sha256: createHash('sha256').update(a.data).digest('hex'),
    size: a.data.length,
    urls: [...a.urls],
  }));
  const draft: ReleaseManifest = {
    schema: 1,
    version: d.version,
    board: d.board,
    compat: { ...(d.minVersion ? { minVersion: d.minVersion } : {}), ...(d.osCompatVersion ? { osCompatVersion: d.osCompatVersion } : {}) },
    createdAt: d.createdAt.toISOString(),
    ...(d.notes ? { notes: d.notes } : {}),
    artifacts,
  };
  const manifest = parseReleaseManifest(JSON.stringify(draft));
  return { manifest, text: encodeReleaseManifest(manifest) };
}

export function signatureComment(keyId: string, version: string): string {
  return `verify with ${keyId}.pub (connector release ${version})`;
}

export function describeRelease(m: ReleaseManifest): string {
  return `release ${m.version} for ${m.board}, ${m.artifacts.map((a) => `${a.kind} ${a.name} (${a.size} bytes)`).join(', ')}`;
}
