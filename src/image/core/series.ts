// SPDX-License-Identifier: UNLICENSED
// What differs between the OpenWrt release series the kit builds on, in one table. Everything
// series-specific the build does (which feeds file to rewrite, which package manager the image must
// carry, whether the ImageBuilder signs images with a throw-away key) reads it from here, never from
// version checks spread around. Sizes and the partition layout are deliberately NOT here: they are
// the board's (board.json) and stay the same across releases, so a 24.10 -> 25.12 sysupgrade keeps
// the layout (and with it U-Boot and the factory block at 24 MiB). Pure.
import { ImageError } from './errors.js';

export interface OpenWrtSeries {
  /** `major.minor`, e.g. "25.12". */
  readonly series: string;
  readonly packageManager: 'opkg' | 'apk';
  /** The package that carries the package manager; added to the image and required in its manifest. */
  readonly packageManagerPackage: string;
  /** The ImageBuilder's package feed list, relative to its top directory. */
  readonly feedsFile: 'repositories.conf' | 'repositories';
  /** The signed index each feed directory holds. */
  readonly feedIndex: 'Packages.gz' | 'packages.adb';
  /** Files a feed directory of an offline mirror needs besides the packages themselves. */
  readonly feedFiles: readonly string[];
  readonly packageExtension: '.ipk' | '.apk';
  /** Where the image keeps the keys of package feeds. */
  readonly deviceKeysDir: string;
  /**
   * The ImageBuilder makes a fresh random usign key (`key-build`) per unpack and signs every image
   * with it (a fwtool signature block after the metadata). Nothing trusts that key; the kit signs its
   * releases itself, so the block is dropped to keep builds byte-reproducible.
   */
  readonly ibSignsImagesWithRandomKey: boolean;
  /** The publisher's signature over `sha256sums`, as published next to it. */
  readonly sumsSignature: { readonly file: 'sha256sums.sig' | 'sha256sums.asc'; readonly keyType: 'usign' | 'gpg' };
  readonly kernel: string;
  /** First release of the series that has the board's profile. */
  readonly firstPatch: number;
}

const SERIES: readonly OpenWrtSeries[] = Object.freeze([
  Object.freeze({
    series: '24.10',
    packageManager: 'opkg',
    packageManagerPackage: 'opkg',
    feedsFile: 'repositories.conf',
    feedIndex: 'Packages.gz',
    feedFiles: Object.freeze(['Packages.gz', 'Packages.sig']),
    packageExtension: '.ipk',
    deviceKeysDir: '/etc/opkg/keys',
    ibSignsImagesWithRandomKey: true,
    sumsSignature: Object.freeze({ file: 'sha256sums.sig', keyType: 'usign' }),
    kernel: '6.6',
    firstPatch: 0,
  }),
  Object.freeze({
    series: '25.12',
    packageManager: 'apk',
    packageManagerPackage: 'apk-mbedtls',
    feedsFile: 'repositories',
    feedIndex: 'packages.adb',
    feedFiles: Object.freeze(['packages.adb']),
    packageExtension: '.apk',
    deviceKeysDir: '/etc/apk/keys',
    // The 25.12 IB makes only an apk key (for its local package index); images carry no signature block.
    ibSignsImagesWithRandomKey: false,
    // No usign release key exists for 25.12; sha256sums is GPG-signed by the build system's key.
    sumsSignature: Object.freeze({ file: 'sha256sums.asc', keyType: 'gpg' }),
    kernel: '6.12',
    firstPatch: 0,
  }),
] as const satisfies readonly OpenWrtSeries[]);

export const SUPPORTED_SERIES: readonly string[] = SERIES.map((s) => s.series);

/** The series of a release version such as "25.12.5"; refuses series the kit has not been made for. */
export function seriesOf(version: string): OpenWrtSeries {
  const m = /^(\d+\.\d+)\.(\d+)$/.exec(version);
  if (!m) throw new ImageError('lock-invalid', `OpenWrt version "${version}" is not MAJOR.MINOR.PATCH (e.g. 25.12.5)`);
  const s = SERIES.find((x) => x.series === m[1]);
  if (!s) {
    throw new ImageError(
      'unsupported-series',
      `OpenWrt ${version}: series ${m[1] as string} is not supported by this kit (supported: ${SUPPORTED_SERIES.join(', ')}); see docs/image.md, "Choosing the OpenWrt series"`,
    );
  }
  if (Number(m[2]) < s.firstPatch) throw new ImageError('unsupported-series', `OpenWrt ${version} predates ${s.series}.${s.firstPatch}`);
  return s;
}

/**
 * The board's packages plus the series' package manager, named explicitly so the image carries the one
 * field diagnostics expect (apk-mbedtls, not apk-openssl, on 25.12) whatever the profile defaults are.
 */
export function seriesPackages(boardPackages: readonly string[], s: OpenWrtSeries): string[] {
  const out = boardPackages.filter((p) => p !== s.packageManagerPackage && p !== `-${s.packageManagerPackage}`);
  out.push(s.packageManagerPackage);
  return out;
}

/** The resolved package set must carry the series' package manager: catches an IB of the wrong series. */
export function checkSeriesManifest(packages: readonly { name: string }[], s: OpenWrtSeries, version: string): void {
  if (!packages.some((p) => p.name === s.packageManagerPackage)) {
    const other = SERIES.find((x) => x !== s && packages.some((p) => p.name === x.packageManagerPackage));
    throw new ImageError(
      'ib-info-mismatch',
      `the ImageBuilder pinned as OpenWrt ${version} resolved no ${s.packageManagerPackage} (the ${s.packageManager} package manager of ${s.series})` +
        (other ? `, but ${other.packageManagerPackage}: it is a ${other.series} ImageBuilder` : '') +
        '; check the lock file entry',
    );
  }
}
