// SPDX-License-Identifier: UNLICENSED
// Interop with OpenBSD signify (Debian signify-openbsd): it verifies our signatures and we verify its,
// and it can sign with a secret key we generated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeUsignPublicKey,
  encodeUsignSecretKey,
  encodeUsignSignature,
  generateUsignKeyPair,
  parseUsignPublicKey,
  parseUsignSecretKey,
  signUsign,
  verifyUsign,
} from '../../src/shared/usign/index.js';
import { tempDir } from '../helpers/tmp.js';
import { skipUnlessCi } from '../helpers/skip.js';

const SIGNIFY = 'signify-openbsd';
const haveSignify = spawnSync(SIGNIFY, [], { stdio: 'ignore' }).error === undefined;

function scratch(t: { after(fn: () => void): void }): string {
  const dir = tempDir(t, 'ck-usign-').dir;
  return dir;
}

test(
  'signify -V accepts a signature we made, and rejects it for a changed message',
  { skip: skipUnlessCi(!haveSignify && `${SIGNIFY} is not installed`) },
  (t) => {
    const dir = scratch(t);
    const pair = generateUsignKeyPair();
    const msg = Buffer.from('{"version":"2.0.0","board":"friendlyarm,nanopi-r3s"}\n');
    writeFileSync(join(dir, 'key.pub'), encodeUsignPublicKey(pair.publicKey));
    writeFileSync(join(dir, 'm.json'), msg);
    writeFileSync(join(dir, 'm.json.sig'), encodeUsignSignature(signUsign(msg, pair.secretKey)));
    const ok = spawnSync(SIGNIFY, ['-V', '-p', join(dir, 'key.pub'), '-m', join(dir, 'm.json')], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /Signature Verified/);
    writeFileSync(join(dir, 'm.json'), Buffer.concat([msg, Buffer.from(' ')]));
    const bad = spawnSync(SIGNIFY, ['-V', '-p', join(dir, 'key.pub'), '-m', join(dir, 'm.json')], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
  },
);

test(
  'we verify a signature signify made with a key signify generated',
  { skip: skipUnlessCi(!haveSignify && `${SIGNIFY} is not installed`) },
  (t) => {
    const dir = scratch(t);
    execFileSync(SIGNIFY, ['-G', '-n', '-p', join(dir, 's.pub'), '-s', join(dir, 's.sec')]);
    writeFileSync(join(dir, 'msg'), 'sha256sums content\n');
    execFileSync(SIGNIFY, ['-S', '-s', join(dir, 's.sec'), '-m', join(dir, 'msg')]);
    const pub = parseUsignPublicKey(readFileSync(join(dir, 's.pub'), 'utf8'));
    const sig = readFileSync(join(dir, 'msg.sig'), 'utf8');
    assert.deepEqual(verifyUsign(readFileSync(join(dir, 'msg')), sig, pub), { ok: true, keyId: pub.keyId });
    assert.equal(verifyUsign(Buffer.from('other'), sig, pub).ok, false);
    // Its unencrypted secret key is readable by us and signs verifiably.
    const sec = parseUsignSecretKey(readFileSync(join(dir, 's.sec'), 'utf8'));
    assert.equal(sec.keyId, pub.keyId);
    assert.equal(verifyUsign(Buffer.from('z'), signUsign(Buffer.from('z'), sec), pub).ok, true);
  },
);

test('signify -S signs with a secret key we generated', { skip: skipUnlessCi(!haveSignify && `${SIGNIFY} is not installed`) }, (t) => {
  const dir = scratch(t);
  const pair = generateUsignKeyPair();
  writeFileSync(join(dir, 'k.sec'), encodeUsignSecretKey(pair.secretKey, Buffer.alloc(16, 1)), { mode: 0o600 });
  writeFileSync(join(dir, 'k.pub'), encodeUsignPublicKey(pair.publicKey));
  writeFileSync(join(dir, 'msg'), 'hello\n');
  execFileSync(SIGNIFY, ['-S', '-s', join(dir, 'k.sec'), '-m', join(dir, 'msg')]);
  const r = verifyUsign(Buffer.from('hello\n'), readFileSync(join(dir, 'msg.sig'), 'utf8'), pair.publicKey);
  assert.deepEqual(r, { ok: true, keyId: pair.publicKey.keyId });
  execFileSync(SIGNIFY, ['-V', '-p', join(dir, 'k.pub'), '-m', join(dir, 'msg')]);
});
