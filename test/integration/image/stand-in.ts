// SPDX-License-Identifier: UNLICENSED
// Test helpers for the image build. Everything named "stand-in" here is NOT OpenWrt: a labelled ImageBuilder
// stand-in (./stand-in-ib, packed under the real tarball name), a usign key made with signify-openbsd
// standing in for OpenWrt's release key, and a lock file that pins both; the Node, glibc and postject
// inputs are the real pinned ones from board/nanopi-r3s/image.lock.json.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchInputs } from '../../../src/image/fetcher.js';
import { mirrorPath, parseImageLock, type LockedInput } from '../../../src/image/lock.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
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
      { name: `stand-in-${version}-sha256sums-sig`, role: 'imagebuilder-sums-sig', version, url: standInUrl(version, 'sha256sums.sig'), file: 'sha256sums.sig' },
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
