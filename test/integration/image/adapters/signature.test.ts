// SPDX-License-Identifier: UNLICENSED
// Checking a signed sha256sums the way the build does for OpenWrt's, with a STAND-IN usign key made by
// signify-openbsd: the kit's own verifier (src/shared/usign) and stock signify must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUsignPublicKey, verifyUsign } from '../../../../src/shared/usign/index.js';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import type { SigningKey } from '../../../../src/image/core/lock.js';
import { checkSignedSums, signifyVerify, signatureKeyId, type UsignVerify } from '../../../../src/image/adapters/signature.js';
import { makeStandInKey, signifySign } from './stand-in.js';
import { tempDir } from '../../../helpers/tmp.js';

const shared: UsignVerify = (m, sig, pub) => verifyUsign(m, sig, parseUsignPublicKey(pub)).ok;
const VERIFIERS: [string, UsignVerify][] = [
  ['src/shared/usign', shared],
  ['signify-openbsd', signifyVerify],
];

function setup(t: { after(fn: () => void): void }) {
  const dir = tempDir(t, 'ck-sig-').dir;
  const k = makeStandInKey(dir);
  const key: SigningKey = { name: 'stand-in', type: 'usign', keyId: k.keyId, publicKey: k.publicKey };
  const sums = join(dir, 'sha256sums');
  writeFileSync(sums, `${'a'.repeat(64)} *openwrt-imagebuilder-24.10.8-rockchip-armv8.Linux-x86_64.tar.zst\n`);
  signifySign(k, sums);
  return { dir, key, sums: readFileSync(sums), sig: readFileSync(`${sums}.sig`, 'utf8') };
}

for (const [name, verify] of VERIFIERS) {
  test(`${name}: a good signature over sha256sums passes`, async (t) => {
    const s = setup(t);
    assert.equal(signatureKeyId(s.sig), s.key.keyId);
    await checkSignedSums(verify, s.sums, s.sig, s.key, 'sha256sums');
  });

  test(`${name}: sha256sums with one hash changed is refused`, async (t) => {
    const s = setup(t);
    const forged = Buffer.from(s.sums.toString('utf8').replace('aaaa', 'aaab'));
    await assert.rejects(checkSignedSums(verify, forged, s.sig, s.key, 'sha256sums'), (e: unknown) => isImageFailure(e, 'bad-signature'));
  });
}

test('a signature by another key is refused before any crypto, naming both key ids', async (t) => {
  const s = setup(t);
  const other = makeStandInKey(join(s.dir, 'other'), 'other');
  const otherKey: SigningKey = { name: 'other', type: 'usign', keyId: other.keyId, publicKey: other.publicKey };
  await assert.rejects(checkSignedSums(shared, s.sums, s.sig, otherKey, 'sha256sums'), (e: unknown) => {
    assert.ok(isImageFailure(e, 'bad-signature'));
    assert.ok((e as Error).message.includes(s.key.keyId) && (e as Error).message.includes(other.keyId));
    return true;
  });
});

test('a file that is not a usign signature is refused', async (t) => {
  const s = setup(t);
  await assert.rejects(checkSignedSums(shared, s.sums, '-----BEGIN PGP SIGNATURE-----\n', s.key, 'sha256sums'), (e: unknown) =>
    isImageFailure(e, 'bad-signature'),
  );
});
