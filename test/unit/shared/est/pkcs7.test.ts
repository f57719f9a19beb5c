// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSelfSignedCa, generateKeyPair } from '../../../../src/shared/pki/x509.js';
import { decodeBase64Body, decodeCertsOnly, encodeBase64Body, encodeCertsOnly } from '../../../../src/shared/est/pkcs7.js';
import { hasCode } from '../../../../src/shared/errors.js';

test('certs-only PKCS#7 round-trips several certificates in order', async () => {
  const certs = [];
  for (const cn of ['A', 'B']) {
    const k = await generateKeyPair();
    certs.push(await createSelfSignedCa({ cn }, k, new Date(0), new Date(2e12)));
  }
  const der = encodeCertsOnly(certs.map((c) => new Uint8Array(c.rawData)));
  const back = decodeCertsOnly(der);
  assert.deepEqual(
    back.map((b) => b.toString('hex')),
    certs.map((c) => Buffer.from(c.rawData).toString('hex')),
  );
});

test('a non-CMS body is a CK_ERR_EST error, not a crash', () => {
  assert.throws(
    () => decodeCertsOnly(Buffer.from('nonsense')),
    (e) => hasCode(e, 'CK_ERR_EST'),
  );
  assert.throws(
    () => decodeBase64Body('not base64 !!'),
    (e) => hasCode(e, 'CK_ERR_EST'),
  );
});

test('base64 bodies use 64-column CRLF lines and decode with whitespace', () => {
  const data = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const b64 = encodeBase64Body(data);
  assert.ok(b64.split('\r\n').every((l) => l.length <= 64));
  assert.deepEqual(decodeBase64Body(b64), data);
  assert.deepEqual(decodeBase64Body(b64.replace(/\r\n/g, '\n  ')), data);
});
