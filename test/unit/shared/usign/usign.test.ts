// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  encodeUsignPublicKey,
  encodeUsignSecretKey,
  encodeUsignSignature,
  generateUsignKeyPair,
  parseUsignPublicKey,
  parseUsignSecretKey,
  parseUsignSignature,
  signUsign,
  usignPublicKeyOf,
  verifyUsign,
} from '../../../../src/shared/usign/index.js';
import { hasCode } from '../../../../src/shared/errors.js';

// Deterministic "randomness" so failures reproduce.
function seeded(label: string): (n: number) => Buffer {
  let counter = 0;
  return (n) => createHash('sha512').update(`${label}:${counter++}`).digest().subarray(0, n);
}

test('the OpenWrt 24.10 usign key parses to its published key id', () => {
  const key = parseUsignPublicKey('RWTTEMbygz6X95lKDAulctZy3aj15823THXfyrfXgwGbxZlXBd2brNcw');
  assert.equal(key.keyId, 'd310c6f2833e97f7');
  assert.equal(key.publicKey.length, 32);
});

test('sign then verify round-trips through the text formats', () => {
  const pair = generateUsignKeyPair({ random: seeded('a') });
  const pubText = encodeUsignPublicKey(pair.publicKey);
  const secText = encodeUsignSecretKey(pair.secretKey, Buffer.alloc(16, 7));
  assert.match(pubText, /^untrusted comment: .*\n[A-Za-z0-9+/=]{56}\n$/);
  const secret = parseUsignSecretKey(secText);
  const pub = parseUsignPublicKey(pubText);
  assert.equal(secret.keyId, pub.keyId);
  assert.deepEqual(usignPublicKeyOf(secret).publicKey, pub.publicKey);
  const msg = Buffer.from('{"version":"1.2.3"}');
  const sigText = encodeUsignSignature(signUsign(msg, secret));
  assert.deepEqual(verifyUsign(msg, sigText, pub), { ok: true, keyId: pub.keyId });
  assert.equal(parseUsignSignature(sigText).keyId, pub.keyId);
});

test('a changed message, a foreign key and garbage are refused with distinct reasons', () => {
  const a = generateUsignKeyPair({ random: seeded('a') });
  const b = generateUsignKeyPair({ random: seeded('b') });
  const msg = Buffer.from('payload');
  const sig = encodeUsignSignature(signUsign(msg, a.secretKey));
  const tampered = verifyUsign(Buffer.from('payloaD'), sig, a.publicKey);
  assert.equal(tampered.ok, false);
  assert.equal(!tampered.ok && tampered.reason, 'bad-signature');
  const foreign = verifyUsign(msg, sig, b.publicKey);
  assert.equal(!foreign.ok && foreign.reason, 'unknown-key');
  const junk = verifyUsign(msg, 'untrusted comment: x\nnot base64!\n', a.publicKey);
  assert.equal(!junk.ok && junk.reason, 'malformed-signature');
  // Same key number but a different public key: the signature check itself must fail.
  const impostor = { ...b.publicKey, keynum: a.publicKey.keynum, keyId: a.publicKey.keyId };
  assert.equal(verifyUsign(msg, sig, impostor).ok, false);
});

test('either of two trusted key slots verifies (key rotation)', () => {
  const oldKey = generateUsignKeyPair({ random: seeded('old') });
  const newKey = generateUsignKeyPair({ random: seeded('new') });
  const msg = Buffer.from('m');
  const slots = [oldKey.publicKey, newKey.publicKey];
  assert.equal(verifyUsign(msg, signUsign(msg, oldKey.secretKey), slots).ok, true);
  const r = verifyUsign(msg, signUsign(msg, newKey.secretKey), slots);
  assert.deepEqual(r, { ok: true, keyId: newKey.publicKey.keyId });
});

test('a wrong-size body, another algorithm and a corrupt secret key are format errors', () => {
  const pair = generateUsignKeyPair({ random: seeded('c') });
  const sigText = encodeUsignSignature(signUsign(Buffer.from('x'), pair.secretKey));
  assert.throws(
    () => parseUsignPublicKey(sigText),
    (e) => hasCode(e, 'CK_ERR_USIGN_FORMAT'),
  );
  const body = Buffer.from(encodeUsignPublicKey(pair.publicKey).split('\n')[1] ?? '', 'base64');
  body[0] = 0x52; // 'R'
  assert.throws(() => parseUsignPublicKey(body.toString('base64')), /not "Ed"/);
  const sec = Buffer.from(encodeUsignSecretKey(pair.secretKey, Buffer.alloc(16)).split('\n')[1] ?? '', 'base64');
  sec[100] = (sec[100] ?? 0) ^ 1;
  assert.throws(() => parseUsignSecretKey(`untrusted comment: s\n${sec.toString('base64')}\n`), /checksum/);
  sec.writeUInt32BE(42, 4);
  assert.throws(() => parseUsignSecretKey(`untrusted comment: s\n${sec.toString('base64')}\n`), /passphrase/);
});
