// SPDX-License-Identifier: UNLICENSED
// The OTA release a build can sign along with its image (`--release-key`): the sysupgrade image and the
// agent binary, served under one https base URL. Pure; time is SOURCE_DATE_EPOCH.
import type { ReleaseManifest } from '../../shared/ota/manifest.js';
import { isoFromEpoch } from './manifest.js';

export interface ReleaseArtifactFile {
  readonly name: string;
  readonly sha256: string;
  readonly size: number;
}

export function imageRelease(o: {
  version: string;
  boardName: string;
  osCompatVersion: string;
  sourceDateEpoch: number;
  urlBase: string;
  image: ReleaseArtifactFile;
  agent: ReleaseArtifactFile;
}): ReleaseManifest {
  const url = (name: string): string => `${o.urlBase.replace(/\/$/, '')}/${name}`;
  return {
    schema: 1,
    version: o.version,
    board: o.boardName,
    compat: { osCompatVersion: o.osCompatVersion },
    createdAt: isoFromEpoch(o.sourceDateEpoch),
    artifacts: [
      { kind: 'sysupgrade', name: o.image.name, sha256: o.image.sha256, size: o.image.size, urls: [url(o.image.name)] },
      { kind: 'agent', name: o.agent.name, sha256: o.agent.sha256, size: o.agent.size, urls: [url(o.agent.name)] },
    ],
  };
}

export function releaseSignatureComment(keyId: string): string {
  return `signed by connector release key ${keyId}`;
}
