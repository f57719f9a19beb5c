// SPDX-License-Identifier: UNLICENSED
// Test helpers for the image build. Everything named "stand-in" here is NOT OpenWrt: a labelled ImageBuilder
// stand-in (./stand-in-ib, packed under the real tarball name) that models both series (24.10: opkg,
// repositories.conf, a random image-signing key per unpack; 25.12: apk, repositories, packages.adb), a
// usign key made with signify-openbsd (24.10's sha256sums.sig) or an OpenPGP key made with gpg (25.12's
// sha256sums.asc) standing in for OpenWrt's, and a lock file that pins them; the Node, glibc and postject
// inputs are the real pinned ones from board/nanopi-r3s/image.lock.json. The stand-in package feeds hold
// only indexes (no packages): the stand-in ImageBuilder resolves names against them.
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
export const OPENWRT = '25.12.5';
export const OPENWRT_OLD = '24.10.8';
const seriesOf = (version: string): string => version.replace(/\.\d+$/, '');

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
  writeFileSync(join(stage, top, 'stand-in.conf'), `VERSION=${version}\n`);
  const feeds = Object.keys(feedsOf(version)).map((rel) => `https://downloads.openwrt.org/releases/${version}/${rel}`);
  if (seriesOf(version) === '24.10') {
    writeFileSync(
      join(stage, top, 'repositories.conf'),
      "## STAND-IN repositories.conf, same shape as the 24.10 ImageBuilder's\n" +
        feeds.map((u, i) => `src/gz openwrt_${i} ${u}`).join('\n') +
        '\n\n## This is the local package repository, do not remove!\nsrc imagebuilder file:packages\n\noption check_signature\n',
    );
  } else {
    // as FeedSourcesAppendAPK writes it: one index URL per line, feeds built as "m" commented out
    writeFileSync(
      join(stage, top, 'repositories'),
      feeds.map((u) => `${u}/packages.adb`).join('\n') +
        `\n# https://downloads.openwrt.org/releases/${version}/packages/aarch64_generic/video/packages.adb\n`,
    );
  }
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

const KERNELS: Record<string, string> = {
  '24.10': '6.6.144-1-77d4782035a23e6f19f9c4751451b4e3',
  '25.12': '6.12.94-1-5fab3a97d147fbf8146094eeebd78fd9',
};
const STALE_KERNEL = '6.6.73-1-f35e93bc2c89b98d107e57cdea041972';

/** STAND-IN package feeds of a release: indexes only, no packages. */
export function feedsOf(version: string): Record<string, [name: string, version: string, kernel?: string][]> {
  const series = seriesOf(version);
  const kernel = KERNELS[series] ?? '';
  const kv = kernel.replace(/-.*/, '');
  const pm: [string, string] = series === '24.10' ? ['opkg', '2024.10.16-r1'] : ['apk-mbedtls', '3.0.5-r1'];
  return {
    [`targets/rockchip/armv8/kmods/${kernel}`]: [
      ['kmod-gpio-button-hotplug', `${kv}-r5`, kernel],
      ['kmod-nft-offload', `${kv}-r1`, kernel],
      ['kmod-r8169', `${kv}-r1`, kernel],
      ['kmod-tun', `${kv}-r1`, kernel],
      ['kmod-stale', '6.6.73-r1', STALE_KERNEL],
    ],
    'targets/rockchip/armv8/packages': [
      ['kernel', kernel],
      ['libc', '1.2.5-r4'],
      ['libgcc', series === '24.10' ? '13.3.0-r4' : '14.3.0-r4'],
    ],
    'packages/aarch64_generic/base': [
      pm,
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
}

/**
 * Writes the stand-in feeds below `mirror` at the host/path the stand-in feeds file names: opkg
 * `Packages` stanzas (24.10) or a STAND-IN text `packages.adb` (25.12; the real one is binary ADB).
 */
export function writeStandInFeeds(mirror: string, version = OPENWRT): string[] {
  const dirs: string[] = [];
  for (const [rel, pkgs] of Object.entries(feedsOf(version))) {
    const dir = join(mirror, 'downloads.openwrt.org/releases', version, rel);
    mkdirSync(dir, { recursive: true });
    if (seriesOf(version) === '24.10') {
      const text = pkgs
        .map(
          ([n, v, k]) =>
            `Package: ${n}\nVersion: ${v}\n${k ? `Depends: kernel (= ${k})\n` : ''}Architecture: aarch64_generic\nFilename: ${n}_${v}_aarch64_generic.ipk\n`,
        )
        .join('\n');
      writeFileSync(join(dir, 'Packages'), text + '\n');
    } else {
      const text = pkgs.map(([n, v, k]) => `${n} ${v}${k ? ` Depends: kernel (= ${k})` : ''}`).join('\n');
      writeFileSync(join(dir, 'packages.adb'), `# STAND-IN packages.adb (text, not ADB)\n${text}\n`);
    }
    dirs.push(dir);
  }
  return dirs;
}

export interface StandInGpgKey {
  /** Primary key fingerprint (the signing subkey's differs, as with OpenWrt's key). */
  fingerprint: string;
  /** Armored public key. */
  armored: string;
  /** Detached armored signature of `file` into `file.asc`. */
  sign(file: string, out?: string): void;
  dispose(): void;
}

/** An OpenPGP key (ed25519 certify-only primary + signing subkey) in a throw-away gpg home. */
export function makeStandInGpgKey(dir: string, name = 'stand-in'): StandInGpgKey {
  const home = join(dir, `gnupg-${name}`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const gpg = (...args: string[]): string =>
    execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  gpg('--quick-gen-key', `${name} (STAND-IN OpenWrt build key) <${name}@stand-in.invalid>`, 'ed25519', 'cert', 'never');
  const fingerprint = (/^fpr:+([0-9A-F]{40}):/m.exec(gpg('--with-colons', '--list-keys')) ?? [])[1] ?? '';
  gpg('--quick-add-key', fingerprint, 'ed25519', 'sign', 'never');
  return {
    fingerprint,
    armored: gpg('--armor', '--export', fingerprint),
    sign: (file, out = `${file}.asc`) => void gpg('--yes', '--armor', '--detach-sign', '--local-user', fingerprint, '--output', out, file),
    dispose: () => {
      execFileSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
    },
  };
}

export interface StandInIbRelease {
  ib: { file: string; path: string; sha256: string };
  /** Mirror paths of the stand-in files, for tampering tests (`sig` is sha256sums.sig or .asc). */
  paths: { ib: string; sums: string; sig: string };
}

export interface StandInRelease extends StandInIbRelease {
  /** Mirror directory holding the stand-in IBs, their signed sha256sums and links to the real inputs. */
  mirror: string;
  lockFile: string;
  /** Stand-in for OpenWrt's 24.10 usign key. */
  key: StandInKey;
  /** Stand-in for OpenWrt's 25.12 OpenPGP key; dispose() stops its gpg-agent. */
  gpg: StandInGpgKey;
  /** Per OpenWrt version; the top-level ib/paths are the default (first) version's. */
  releases: Record<string, StandInIbRelease>;
}

const standInUrl = (version: string, file: string): string => `http://${STAND_IN_HOST}/releases/${version}/targets/rockchip/armv8/${file}`;

/** The real pinned inputs other than the ImageBuilder, fetched into the repository cache when missing. */
export async function realRuntimeInputs(): Promise<LockedInput[]> {
  const real = parseImageLock(readFileSync(REAL_LOCK, 'utf8'));
  const wanted = real.inputs.filter((i) => ['node-host', 'node-target', 'glibc-runtime', 'postject'].includes(i.role));
  await fetchInputs(wanted, { cacheDir: REAL_CACHE, offline: false, retryDelayMs: 200 });
  return wanted;
}

/**
 * Builds a mirror + lock file for builds against the stand-in ImageBuilder, one per version (the first
 * is the lock file's default): 24.10 sha256sums signed with a usign key (.sig), 25.12 with an OpenPGP
 * key (.asc) whose armored public key sits next to the lock file, as the real lock pins OpenWrt's.
 */
export async function makeStandInRelease(dir: string, versions: readonly string[] = [OPENWRT]): Promise<StandInRelease> {
  const runtime = await realRuntimeInputs();
  const mirror = join(dir, 'mirror');
  const key = makeStandInKey(join(dir, 'keys'));
  const gpg = makeStandInGpgKey(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'stand-in-gpg.asc'), gpg.armored);
  const releases: Record<string, StandInIbRelease> = {};
  const inputs: unknown[] = [];
  for (const version of versions) {
    const relDir = join(mirror, STAND_IN_HOST, 'releases', version, 'targets/rockchip/armv8');
    mkdirSync(relDir, { recursive: true });
    const ib = packStandInImageBuilder(relDir, version);
    writeStandInFeeds(mirror, version);
    const sums = join(relDir, 'sha256sums');
    writeFileSync(sums, `${ib.sha256} *${ib.file}\n`);
    const usign = seriesOf(version) === '24.10';
    const sigFile = usign ? 'sha256sums.sig' : 'sha256sums.asc';
    if (usign) signifySign(key, sums);
    else gpg.sign(sums);
    const keyName = usign ? 'stand-in' : 'stand-in-gpg';
    releases[version] = { ib, paths: { ib: join(relDir, ib.file), sums, sig: join(relDir, sigFile) } };
    inputs.push(
      {
        name: `stand-in-imagebuilder-${version}`,
        role: 'imagebuilder',
        version,
        url: standInUrl(version, ib.file),
        file: ib.file,
        sha256: ib.sha256,
        signedSums: { sums: `stand-in-${version}-sha256sums`, sig: `stand-in-${version}-sha256sums-sig`, key: keyName },
      },
      {
        name: `stand-in-${version}-sha256sums`,
        role: 'imagebuilder-sums',
        version,
        url: standInUrl(version, 'sha256sums'),
        file: 'sha256sums',
        signature: { sig: `stand-in-${version}-sha256sums-sig`, key: keyName },
      },
      {
        name: `stand-in-${version}-sha256sums-sig`,
        role: 'imagebuilder-sums-sig',
        version,
        url: standInUrl(version, sigFile),
        file: sigFile,
      },
    );
  }
  for (const i of runtime) {
    const to = join(mirror, mirrorPath(i));
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(join(REAL_CACHE, mirrorPath(i)), to);
  }
  const lock = {
    $comment: 'STAND-IN lock file for tests: the ImageBuilders and the keys are stand-ins, the rest is real.',
    lockVersion: 1,
    defaults: { openwrt: versions[0], node: '24.21.0' },
    keys: {
      'stand-in': { type: 'usign', keyId: key.keyId, publicKey: key.publicKey },
      'stand-in-gpg': { type: 'gpg', fingerprint: gpg.fingerprint, keyFile: 'keys/stand-in-gpg.asc' },
    },
    inputs: [...inputs, ...runtime],
  };
  const lockFile = join(dir, 'stand-in.lock.json');
  writeFileSync(lockFile, JSON.stringify(lock, null, 2));
  const first = releases[versions[0] as string] as StandInIbRelease;
  return { mirror, lockFile, key, gpg, releases, ...first };
}
