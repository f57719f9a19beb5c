// SPDX-License-Identifier: UNLICENSED
// Checking a signed sha256sums the way the build does for OpenWrt's: 24.10's .sig with a STAND-IN usign
// key made by signify-openbsd (the kit's own verifier and stock signify must agree), and 25.12's .asc with
// a STAND-IN OpenPGP key made by gpg (certify-only primary + signing subkey, like OpenWrt's), checked by
// gpgv against a keyring holding only the pinned key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUsignPublicKey, verifyUsign } from '../../../../src/shared/usign/index.js';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import type { GpgKey, SigningKey, UsignKey } from '../../../../src/image/core/lock.js';
import { dearmorPublicKey } from '../../../../src/image/core/openpgp.js';
import {
  checkSignedSums,
  gpgvVerify,
  signifyVerify,
  signatureKeyId,
  type SumsVerifiers,
  type UsignVerify,
} from '../../../../src/image/adapters/signature.js';
import { makeStandInGpgKey, makeStandInKey, REPO, signifySign } from './stand-in.js';
import { tempDir } from '../../../helpers/tmp.js';

const shared: UsignVerify = (m, sig, pub) => verifyUsign(m, sig, parseUsignPublicKey(pub)).ok;
const via = (usign: UsignVerify, keyring?: Buffer): SumsVerifiers => ({
  usign,
  gpg: gpgvVerify,
  ...(keyring ? { gpgKeyring: () => Promise.resolve(keyring) } : {}),
});
const VERIFIERS: [string, UsignVerify][] = [
  ['src/shared/usign', shared],
  ['signify-openbsd', signifyVerify],
];

function setup(t: { after(fn: () => void): void }) {
  const dir = tempDir(t, 'ck-sig-').dir;
  const k = makeStandInKey(dir);
  const key: UsignKey = { name: 'stand-in', type: 'usign', keyId: k.keyId, publicKey: k.publicKey };
  const sums = join(dir, 'sha256sums');
  writeFileSync(sums, `${'a'.repeat(64)} *openwrt-imagebuilder-24.10.8-rockchip-armv8.Linux-x86_64.tar.zst\n`);
  signifySign(k, sums);
  return { dir, key, sums: readFileSync(sums), sig: readFileSync(`${sums}.sig`, 'utf8') };
}

for (const [name, verify] of VERIFIERS) {
  test(`${name}: a good signature over sha256sums passes`, async (t) => {
    const s = setup(t);
    assert.equal(signatureKeyId(s.sig), s.key.keyId);
    await checkSignedSums(via(verify), s.sums, s.sig, s.key, 'sha256sums');
  });

  test(`${name}: sha256sums with one hash changed is refused`, async (t) => {
    const s = setup(t);
    const forged = Buffer.from(s.sums.toString('utf8').replace('aaaa', 'aaab'));
    await assert.rejects(checkSignedSums(via(verify), forged, s.sig, s.key, 'sha256sums'), (e: unknown) =>
      isImageFailure(e, 'bad-signature'),
    );
  });
}

test('a signature by another key is refused before any crypto, naming both key ids', async (t) => {
  const s = setup(t);
  const other = makeStandInKey(join(s.dir, 'other'), 'other');
  const otherKey: SigningKey = { name: 'other', type: 'usign', keyId: other.keyId, publicKey: other.publicKey };
  await assert.rejects(checkSignedSums(via(shared), s.sums, s.sig, otherKey, 'sha256sums'), (e: unknown) => {
    assert.ok(isImageFailure(e, 'bad-signature'));
    assert.ok((e as Error).message.includes(s.key.keyId) && (e as Error).message.includes(other.keyId));
    return true;
  });
});

test('a file that is not a usign signature is refused', async (t) => {
  const s = setup(t);
  await assert.rejects(checkSignedSums(via(shared), s.sums, '-----BEGIN PGP SIGNATURE-----\n', s.key, 'sha256sums'), (e: unknown) =>
    isImageFailure(e, 'bad-signature'),
  );
});

function setupGpg(t: { after(fn: () => void): void }) {
  const dir = tempDir(t, 'ck-gpg-').dir;
  const k = makeStandInGpgKey(dir);
  t.after(() => k.dispose());
  const key: GpgKey = { name: 'stand-in-gpg', type: 'gpg', fingerprint: k.fingerprint, keyFile: 'keys/stand-in.asc' };
  const sums = join(dir, 'sha256sums');
  writeFileSync(sums, `${'a'.repeat(64)} *openwrt-imagebuilder-25.12.5-rockchip-armv8.Linux-x86_64.tar.zst\n`);
  k.sign(sums);
  const keyring = dearmorPublicKey(k.armored, 'stand-in key');
  return { dir, k, key, keyring, sums: readFileSync(sums), asc: readFileSync(`${sums}.asc`, 'utf8') };
}

test('gpgv: a good .asc by the pinned key (made by its signing subkey) passes', async (t) => {
  const s = setupGpg(t);
  await checkSignedSums(via(shared, s.keyring), s.sums, s.asc, s.key, 'sha256sums');
});

test('gpgv: sha256sums with one hash changed is refused', async (t) => {
  const s = setupGpg(t);
  const forged = Buffer.from(s.sums.toString('utf8').replace('aaaa', 'aaab'));
  await assert.rejects(checkSignedSums(via(shared, s.keyring), forged, s.asc, s.key, 'sha256sums'), (e: unknown) => {
    assert.ok(isImageFailure(e, 'bad-signature'));
    assert.match((e as Error).message, /does not match \(file altered\)/);
    return true;
  });
});

test('gpgv: an .asc made by another key is refused, even if a key file was swapped to match it', async (t) => {
  const s = setupGpg(t);
  const other = makeStandInGpgKey(join(s.dir, 'other'), 'other');
  t.after(() => other.dispose());
  const sums = join(s.dir, 'sha256sums');
  other.sign(sums, join(s.dir, 'other.asc'));
  const otherAsc = readFileSync(join(s.dir, 'other.asc'), 'utf8');
  // the pinned keyring cannot check it at all
  await assert.rejects(checkSignedSums(via(shared, s.keyring), s.sums, otherAsc, s.key, 'sha256sums'), (e: unknown) => {
    assert.ok(isImageFailure(e, 'bad-signature'));
    assert.match((e as Error).message, /cannot be checked/);
    return true;
  });
  // the key file replaced by the forger's: the pinned fingerprint still decides
  const swapped = dearmorPublicKey(other.armored, 'other key');
  await assert.rejects(checkSignedSums(via(shared, swapped), s.sums, otherAsc, s.key, 'sha256sums'), (e: unknown) => {
    assert.ok(isImageFailure(e, 'bad-signature'));
    assert.ok(
      (e as Error).message.includes(`signed by key ${other.fingerprint}, the lock file pins ${s.k.fingerprint}`),
      (e as Error).message,
    );
    return true;
  });
});

test('gpgv: a usign .sig where the lock pins a gpg key is refused', async (t) => {
  const s = setupGpg(t);
  const u = setup(t);
  await assert.rejects(checkSignedSums(via(shared, s.keyring), s.sums, u.sig, s.key, 'sha256sums'), /not an armored OpenPGP signature/);
});

test('the committed OpenWrt build-system key dearmors to the pinned fingerprint (gpg agrees)', (t) => {
  const file = join(REPO, 'board/nanopi-r3s/keys/openwrt-build-system-1D53D1877742E911.asc');
  const bytes = dearmorPublicKey(readFileSync(file, 'utf8'), file);
  const dir = tempDir(t, 'ck-gpgfp-').dir;
  writeFileSync(join(dir, 'k.gpg'), bytes);
  const out = execFileSync('gpg', ['--homedir', dir, '--batch', '--with-colons', '--show-keys', join(dir, 'k.gpg')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  assert.match(out, /^fpr:+8A8BC12F46B836C0F9CDB36F1D53D1877742E911:/m);
});
