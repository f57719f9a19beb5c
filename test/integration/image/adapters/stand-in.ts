// SPDX-License-Identifier: UNLICENSED
// Test helpers for the image build. Everything named "stand-in" here is NOT OpenWrt: a labelled ImageBuilder
// stand-in (./stand-in-ib, packed under the real tarball name), a usign key made with signify-openbsd
// standing in for OpenWrt's release key, and a lock file that pins both; the Node, glibc and postject
// inputs are the real pinned ones from board/nanopi-r3s/image.lock.json. The stand-in package feeds hold
// only `Packages` indexes (no .ipk files): the stand-in ImageBuilder resolves names against them.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchInputs } from '../../../../src/image/adapters/fetcher.js';
import { mirrorPath, parseImageLock, type LockedInput } from '../../../../src/image/core/lock.js';

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
export const STAND_IN_IB_SRC = fileURLToPath(new URL('./stand-in-ib/', import.meta.url));
export const REAL_LOCK = join(REPO, 'board/nanopi-r3s/image.lock.json');
export const REAL_CACHE = join(REPO, '.cache/image-inputs');
export const STAND_IN_HOST = 'stand-in.invalid';
export const OPENWRT = '24.10.8';

export const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

export interface StandInKey {
  pubFile: string;
  secFile: string;
  keyId: string;
  publicKey: string;
}

/** A usign-compatible Ed25519 key pair made by signify-openbsd (stand-in for OpenWrt's 24.10 key). */
export function makeStandInKey(dir: string, name = 'stand-in'): StandInKey {
  mkdirSync(dir, { recursive: true });
  const pubFile = join(dir, `${name}.pub`);
  const secFile = join(dir, `${name}.sec`);
  execFileSync('signify-openbsd', ['-G', '-n', '-c', `${name} (STAND-IN usign key)`, '-p', pubFile, '-s', secFile]);
  const publicKey = (readFileSync(pubFile, 'utf8').split('\n')[1] ?? '').trim();
  return { pubFile, secFile, keyId: Buffer.from(publicKey, 'base64').subarray(2, 10).toString('hex'), publicKey };
}

export function signifySign(key: StandInKey, file: string): void {
  execFileSync('signify-openbsd', ['-S', '-s', key.secFile, '-m', file, '-x', `${file}.sig`]);
}

/** Packs ./stand-in-ib as openwrt-imagebuilder-<ver>-rockchip-armv8.Linux-x86_64.tar.zst, byte-reproducibly. */
export function packStandInImageBuilder(outDir: string, version = OPENWRT): { file: string; path: string; sha256: string } {
  const top = `openwrt-imagebuilder-${version}-rockchip-armv8.Linux-x86_64`;
  const stage = join(outDir, '.stage');
  mkdirSync(stage, { recursive: true });
  cpSync(STAND_IN_IB_SRC, join(stage, top), { recursive: true });
  const file = `${top}.tar.zst`;
  const path = join(outDir, file);
  execFileSync('sh', [
    '-c',
    'tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf - "$2" | zstd -q -c > "$3"',
    'pack',
    stage,
    top,
    path,
  ]);
  return { file, path, sha256: sha256File(path) };
}

const KERNEL = '6.6.144-1-77d4782035a23e6f19f9c4751451b4e3';
const STALE_KERNEL = '6.6.73-1-f35e93bc2c89b98d107e57cdea041972';

/** STAND-IN package feeds (opkg `Packages` stanzas only, no .ipk files) for the stand-in ImageBuilder. */
const FEEDS: Record<string, [name: string, version: string, kernel?: string][]> = {
  [`targets/rockchip/armv8/kmods/${KERNEL}`]: [
    ['kmod-gpio-button-hotplug', '6.6.144-r5', KERNEL],
    ['kmod-nft-offload', '6.6.144-r1', KERNEL],
    ['kmod-r8169', '6.6.144-r1', KERNEL],
    ['kmod-tun', '6.6.144-r1', KERNEL],
    ['kmod-stale', '6.6.73-r1', STALE_KERNEL],
  ],
  'targets/rockchip/armv8/packages': [
    ['kernel', KERNEL],
    ['libc', '1.2.5-r4'],
    ['libgcc', '13.3.0-r4'],
  ],
  'packages/aarch64_generic/base': [
    ['base-files', '1640-r28xxx'],
    ['busybox', '1.36.1-r2'],
    ['ca-bundle', '20240203-r1'],
    ['dnsmasq', '2.90-r4'],
    ['ip-full', '6.11.0-r1'],
    ['dropbear', '2024.86-r1'],
    ['e2fsprogs', '1.47.0-r2'],
    ['firewall4', '2024.12.18-r1'],
    ['fstools', '2024.07.14-r1'],
    ['libustream-mbedtls', '2024.07.28-r1'],
    ['logd', '2024.04.26-r1'],
    ['mkf2fs', '1.16.0-r3'],
    ['mtd', '26'],
    ['netifd', '2024.12.17-r1'],
    ['nftables', '1.1.1-r1'],
    ['odhcp6c', '2024.09.25-r1'],
    ['odhcpd-ipv6only', '2024.05.08-r1'],
    ['opkg', '2024.10.16-r1'],
    ['partx-utils', '2.40.2-r1'],
    ['ppp', '2.5.1-r1'],
    ['ppp-mod-pppoe', '2.5.1-r1'],
    ['procd-ujail', '2024.12.22-r1'],
    ['uboot-envtools', '2024.01-r2'],
    ['uci', '2024.10.10-r1'],
    ['uclient-fetch', '2024.10.22-r1'],
    ['urandom-seed', '3'],
    ['urngd', '2023.11.01-r1'],
  ],
  'packages/aarch64_generic/packages': [['tcpdump', '4.99.5-r1']],
};

/** Writes the stand-in feeds below `mirror` at the host/path the stand-in repositories.conf names. */
export function writeStandInFeeds(mirror: string, version = OPENWRT): string[] {
  const dirs: string[] = [];
  for (const [rel, pkgs] of Object.entries(FEEDS)) {
    const dir = join(mirror, 'downloads.openwrt.org/releases', version, rel);
    mkdirSync(dir, { recursive: true });
    const text = pkgs
      .map(
        ([n, v, k]) =>
          `Package: ${n}\nVersion: ${v}\n${k ? `Depends: kernel (= ${k})\n` : ''}Architecture: aarch64_generic\nFilename: ${n}_${v}_aarch64_generic.ipk\n`,
      )
      .join('\n');
    writeFileSync(join(dir, 'Packages'), text + '\n');
    dirs.push(dir);
  }
  return dirs;
}

export interface StandInRelease {
  /** Mirror directory holding the stand-in IB, its signed sha256sums and links to the real inputs. */
  mirror: string;
  lockFile: string;
  key: StandInKey;
  ib: { file: string; path: string; sha256: string };
  /** Mirror paths of the stand-in files, for tampering tests. */
  paths: { ib: string; sums: string; sig: string };
}

const standInUrl = (version: string, file: string): string => `http://${STAND_IN_HOST}/releases/${version}/targets/rockchip/armv8/${file}`;

/** The real pinned inputs other than the ImageBuilder, fetched into the repository cache when missing. */
export async function realRuntimeInputs(): Promise<LockedInput[]> {
  const real = parseImageLock(readFileSync(REAL_LOCK, 'utf8'));
  const wanted = real.inputs.filter((i) => ['node-host', 'node-target', 'glibc-runtime', 'postject'].includes(i.role));
  await fetchInputs(wanted, { cacheDir: REAL_CACHE, offline: false, retryDelayMs: 200 });
  return wanted;
}

/** Builds a mirror + lock file for a build against the stand-in ImageBuilder. */
export async function makeStandInRelease(dir: string, version = OPENWRT): Promise<StandInRelease> {
  const runtime = await realRuntimeInputs();
  const mirror = join(dir, 'mirror');
  const key = makeStandInKey(join(dir, 'keys'));
  const relDir = join(mirror, STAND_IN_HOST, 'releases', version, 'targets/rockchip/armv8');
  mkdirSync(relDir, { recursive: true });
  const ib = packStandInImageBuilder(relDir, version);
  writeStandInFeeds(mirror, version);
  writeFileSync(join(relDir, 'sha256sums'), `${ib.sha256} *${ib.file}\n`);
  signifySign(key, join(relDir, 'sha256sums'));
  for (const i of runtime) {
    const to = join(mirror, mirrorPath(i));
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(join(REAL_CACHE, mirrorPath(i)), to);
  }
  const lock = {
    $comment: 'STAND-IN lock file for tests: the ImageBuilder and the usign key are stand-ins, the rest is real.',
    lockVersion: 1,
    defaults: { openwrt: version, node: '24.21.0' },
    keys: { 'stand-in': { type: 'usign', keyId: key.keyId, publicKey: key.publicKey } },
    inputs: [
      {
        name: `stand-in-imagebuilder-${version}`,
        role: 'imagebuilder',
        version,
        url: standInUrl(version, ib.file),
        file: ib.file,
        sha256: ib.sha256,
        signedSums: { sums: `stand-in-${version}-sha256sums`, sig: `stand-in-${version}-sha256sums-sig`, key: 'stand-in' },
      },
      {
        name: `stand-in-${version}-sha256sums`,
        role: 'imagebuilder-sums',
        version,
        url: standInUrl(version, 'sha256sums'),
        file: 'sha256sums',
        signature: { sig: `stand-in-${version}-sha256sums-sig`, key: 'stand-in' },
      },
      {
        name: `stand-in-${version}-sha256sums-sig`,
        role: 'imagebuilder-sums-sig',
        version,
        url: standInUrl(version, 'sha256sums.sig'),
        file: 'sha256sums.sig',
      },
      ...runtime,
    ],
  };
  const lockFile = join(dir, 'stand-in.lock.json');
  writeFileSync(lockFile, JSON.stringify(lock, null, 2));
  return {
    mirror,
    lockFile,
    key,
    ib,
    paths: { ib: join(relDir, ib.file), sums: join(relDir, 'sha256sums'), sig: join(relDir, 'sha256sums.sig') },
  };
}
