// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBoardConfig } from '../../../../src/image/core/board.js';
import { parseImageLock } from '../../../../src/image/core/lock.js';
import { encodeBuildManifest, encodeSbom, type BuildFacts } from '../../../../src/image/core/manifest.js';

const root = new URL('../../../../board/nanopi-r3s/', import.meta.url);
const board = parseBoardConfig(readFileSync(fileURLToPath(new URL('board.json', root)), 'utf8'));
const lock = parseImageLock(readFileSync(fileURLToPath(new URL('image.lock.json', root)), 'utf8'));

const facts: BuildFacts = {
  kit: { name: 'connector-kit', version: '1.2.3', commit: 'abc' },
  board,
  sourceDateEpoch: 1_764_000_000,
  openwrt: { version: '24.10.8', revision: 'r28739' },
  inputs: lock.inputs.filter((i) => i.sha256).map((input) => ({ input, sha256: input.sha256 ?? '', size: input.size ?? 1 })),
  packages: [
    { name: 'kernel', version: '6.6.144-1-77d4782035a23e6f19f9c4751451b4e3' },
    { name: 'kmod-tun', version: '6.6.144-r1' },
  ],
  bundledNpm: [{ name: '@peculiar/x509', version: '2.2.0' }],
  agent: { sha256: 'c'.repeat(64), size: 10, blobSha256: 'd'.repeat(64), bundleSha256: 'e'.repeat(64), bundleFormat: 'cjs' },
  runtimeLibs: ['libc.so.6'],
  overlay: { digest: 'f'.repeat(64), entries: [] },
  outputs: [{ file: 'img.gz', sha256: '1'.repeat(64), size: 5 }],
};

test('manifest and SBOM are the same bytes for the same facts, with time from SOURCE_DATE_EPOCH', () => {
  assert.equal(encodeBuildManifest(facts), encodeBuildManifest({ ...facts }));
  assert.equal(encodeSbom(facts, 'img.gz', '1'.repeat(64)), encodeSbom(facts, 'img.gz', '1'.repeat(64)));
  const m = JSON.parse(encodeBuildManifest(facts)) as { builtAt: string; inputs: { url: string; sha256: string }[] };
  assert.equal(m.builtAt, '2025-11-24T16:00:00Z');
  assert.ok(m.inputs.every((i) => /^https?:\/\//.test(i.url) && /^[0-9a-f]{64}$/.test(i.sha256)));
});

test('the SBOM is CycloneDX 1.5 naming the image, OpenWrt packages, Node, glibc and bundled npm packages', () => {
  const bom = JSON.parse(encodeSbom(facts, 'img.gz', '1'.repeat(64))) as {
    bomFormat: string;
    specVersion: string;
    serialNumber: string;
    metadata: { timestamp: string; component: { type: string; hashes: { content: string }[] } };
    components: { 'bom-ref': string; type: string; purl?: string }[];
  };
  assert.equal(bom.bomFormat, 'CycloneDX');
  assert.equal(bom.specVersion, '1.5');
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(bom.metadata.component.type, 'firmware');
  assert.equal(bom.metadata.component.hashes[0]?.content, '1'.repeat(64));
  const refs = bom.components.map((c) => c['bom-ref']);
  for (const r of [
    'openwrt:kernel',
    'openwrt:kmod-tun',
    'nodejs',
    'deb:libc6',
    'deb:libstdc++6',
    'deb:libgcc-s1',
    'npm:@peculiar/x509',
    'connector-agent',
  ]) {
    assert.ok(refs.includes(r), r);
  }
  assert.equal(bom.components.find((c) => c['bom-ref'] === 'openwrt:kernel')?.type, 'operating-system');
  assert.equal(bom.components.find((c) => c['bom-ref'] === 'npm:@peculiar/x509')?.purl, 'pkg:npm/%40peculiar/x509@2.2.0');
});
