// SPDX-License-Identifier: UNLICENSED
// Builds signed test releases: an "agent" artifact (a tiny script whose health we can control), its
// manifest and usign signature, written into an artifact directory served over HTTPS.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeReleaseManifest, type ArtifactKind, type ReleaseManifest } from '../../../../src/shared/ota/manifest.js';
import { encodeUsignSignature, signUsign, type UsignSecretKey } from '../../../../src/shared/usign/index.js';
import { startArtifactServer } from '../../../../src/ota/adapters/artifact-server.js';
import { silentLogger } from '../../../../src/shared/log.js';
import type { TestPki } from '../../../helpers/pki.js';

export const BOARD = 'friendlyarm,nanopi-r3s';

export interface BuiltRelease {
  readonly manifest: ReleaseManifest;
  readonly manifestBytes: Buffer;
  readonly signature: string;
  readonly artifactFile: string;
  readonly artifact: Buffer;
}

export function agentArtifact(version: string, healthy: boolean, padBytes = 0): Buffer {
  return Buffer.from(
    `// connector-agent ${version}\nexport const VERSION = '${version}';\nexport const HEALTHY = ${healthy};\n// ${'x'.repeat(padBytes)}\n`,
  );
}

export function buildRelease(o: {
  dir: string;
  baseUrl: string;
  version: string;
  key: UsignSecretKey;
  board?: string;
  kind?: ArtifactKind;
  content: Buffer;
  name?: string;
  minVersion?: string;
}): BuiltRelease {
  const name = o.name ?? (o.kind === 'sysupgrade' ? `openwrt-${o.version}-sysupgrade.img.gz` : `connector-agent-${o.version}.mjs`);
  const artifactFile = join(o.dir, name);
  writeFileSync(artifactFile, o.content);
  const manifest: ReleaseManifest = {
    schema: 1,
    version: o.version,
    board: o.board ?? BOARD,
    compat: o.minVersion ? { minVersion: o.minVersion } : {},
    createdAt: new Date().toISOString(),
    artifacts: [
      {
        kind: o.kind ?? 'agent',
        name,
        sha256: createHash('sha256').update(o.content).digest('hex'),
        size: o.content.length,
        urls: [`${o.baseUrl}/${name}`],
      },
    ],
  };
  const manifestBytes = Buffer.from(encodeReleaseManifest(manifest));
  const signature = encodeUsignSignature(signUsign(manifestBytes, o.key));
  return { manifest, manifestBytes, signature, artifactFile, artifact: o.content };
}

/** The HTTPS artifact server over `dir` on a free loopback port, with the test PKI's server certificate; closed after the test. */
export async function serveTestArtifacts(
  t: { after(fn: () => unknown): void },
  pki: TestPki,
  dir: string,
): Promise<Awaited<ReturnType<typeof startArtifactServer>>> {
  const server = await startArtifactServer({
    dir,
    cert: pki.server.cert,
    key: pki.server.key,
    host: '127.0.0.1',
    port: 0,
    log: silentLogger,
  });
  t.after(() => server.close());
  return server;
}
