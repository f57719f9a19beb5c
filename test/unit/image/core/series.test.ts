// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { parseBoardConfig } from '../../../../src/image/core/board.js';
import { parseImageLock } from '../../../../src/image/core/lock.js';
import { checkSeriesManifest, seriesOf, seriesPackages, SUPPORTED_SERIES } from '../../../../src/image/core/series.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../../${p}`, import.meta.url));

test('each supported series maps to its package manager, feeds file and sums signature', () => {
  assert.deepEqual(SUPPORTED_SERIES, ['24.10', '25.12']);
  const old = seriesOf('24.10.8');
  assert.equal(old.packageManagerPackage, 'opkg');
  assert.equal(old.feedsFile, 'repositories.conf');
  assert.equal(old.sumsSignature.file, 'sha256sums.sig');
  assert.equal(old.ibSignsImagesWithRandomKey, true);
  const cur = seriesOf('25.12.5');
  assert.equal(cur.packageManagerPackage, 'apk-mbedtls');
  assert.equal(cur.feedsFile, 'repositories');
  assert.equal(cur.feedIndex, 'packages.adb');
  assert.deepEqual(cur.sumsSignature, { file: 'sha256sums.asc', keyType: 'gpg' });
  assert.equal(cur.ibSignsImagesWithRandomKey, false);
});

test('an unknown series or a malformed version is refused with the supported list', () => {
  assert.throws(
    () => seriesOf('23.05.5'),
    (e: unknown) => isImageFailure(e, 'unsupported-series') && /supported: 24\.10, 25\.12/.test((e as Error).message),
  );
  assert.throws(
    () => seriesOf('25.12'),
    (e: unknown) => isImageFailure(e, 'lock-invalid'),
  );
  assert.throws(
    () => seriesOf('snapshot'),
    (e: unknown) => isImageFailure(e, 'lock-invalid'),
  );
});

test('the series package manager is added to the board packages exactly once', () => {
  assert.deepEqual(seriesPackages(['kmod-tun', '-ppp'], seriesOf('25.12.5')), ['kmod-tun', '-ppp', 'apk-mbedtls']);
  assert.deepEqual(seriesPackages(['apk-mbedtls', 'kmod-tun'], seriesOf('25.12.5')), ['kmod-tun', 'apk-mbedtls']);
  assert.deepEqual(seriesPackages(['kmod-tun'], seriesOf('24.10.8')), ['kmod-tun', 'opkg']);
});

test('a manifest without the series package manager names the series the ImageBuilder really is', () => {
  checkSeriesManifest([{ name: 'apk-mbedtls' }], seriesOf('25.12.5'), '25.12.5');
  assert.throws(
    () => checkSeriesManifest([{ name: 'base-files' }, { name: 'opkg' }], seriesOf('25.12.5'), '25.12.5'),
    (e: unknown) =>
      isImageFailure(e, 'ib-info-mismatch') && /no apk-mbedtls .*but opkg: it is a 24\.10 ImageBuilder/.test((e as Error).message),
  );
});

test("ROOTFS_PARTSIZE is the board's, not the release's: no series entry carries a size", () => {
  const board = parseBoardConfig(readFileSync(root('board/nanopi-r3s/board.json'), 'utf8'));
  assert.equal(board.rootfsPartsizeMib, 512);
  assert.equal(board.kernelPartsizeMib, 16);
  const lock = parseImageLock(readFileSync(root('board/nanopi-r3s/image.lock.json'), 'utf8'));
  const versions = [...new Set(lock.inputs.filter((i) => i.role === 'imagebuilder').map((i) => i.version))];
  assert.ok(versions.includes('24.10.8') && versions.includes('25.12.5'));
  for (const v of versions) {
    for (const k of Object.keys(seriesOf(v))) assert.doesNotMatch(k, /part|size|mib/i, `${v}: ${k} is not a size`);
  }
});
