// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { dearmorPublicKey, gpgvVerdict } from '../../../../src/image/core/openpgp.js';

const KEY = readFileSync(
  fileURLToPath(new URL('../../../../board/nanopi-r3s/keys/openwrt-build-system-1D53D1877742E911.asc', import.meta.url)),
  'utf8',
);
const FPR = '8A8BC12F46B836C0F9CDB36F1D53D1877742E911';
const SUB = '92C561DE55AE6552F3C736B82B0151090606D1D9';

test('the pinned OpenWrt key dearmors to a public-key packet; a damaged one fails its checksum', () => {
  const b = dearmorPublicKey(KEY, 'key');
  assert.equal(b[0], 0x98); // old-format packet, tag 6, one length byte
  const damaged = KEY.replace('mDMEZGYbnhYJ', 'mDMEZGYbnhYK');
  assert.throws(
    () => dearmorPublicKey(damaged, 'key'),
    (e: unknown) => isImageFailure(e, 'lock-invalid') && /checksum/.test((e as Error).message),
  );
  assert.throws(
    () => dearmorPublicKey('-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n', 'key'),
    /not an armored OpenPGP public key/,
  );
});

const valid = (primary: string): string =>
  `[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 2B0151090606D1D9 OpenWrt Build System\n[GNUPG:] VALIDSIG ${SUB} 2026-06-30 1782864000 0 4 0 22 10 00 ${primary}\n`;

test('gpgv status: good only with VALIDSIG chaining to the pinned primary fingerprint', () => {
  assert.deepEqual(gpgvVerdict(valid(FPR), FPR), { ok: true, signingKey: SUB });
  const other = gpgvVerdict(valid('0'.repeat(40)), FPR);
  assert.equal(other.ok, false);
  assert.equal(gpgvVerdict('', FPR).ok, false);
});

test('gpgv status: any bad, expired, revoked or uncheckable signature refuses the file', () => {
  for (const bad of [
    'BADSIG 2B0151090606D1D9 x',
    'ERRSIG 2B0151090606D1D9 22 10 00 1782864000 9 -',
    'EXPKEYSIG 2B01 x',
    'REVKEYSIG 2B01 x',
    'NODATA 1',
  ]) {
    const v = gpgvVerdict(`${valid(FPR)}[GNUPG:] ${bad}\n`, FPR);
    assert.equal(v.ok, false, bad);
  }
});
