// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeUsignSignature, generateUsignKeyPair, signUsign } from '../../../../../src/shared/usign/index.js';
import { checkRelease } from '../../../../../src/agent/core/ota/verify-release.js';

const key = generateUsignKeyPair();
const device = { board: 'friendlyarm,nanopi-r3s', version: '1.5.0', osCompatVersion: '1.1' };
function signed(patch: Record<string, unknown> = {}): { bytes: Buffer; sig: string } {
  const m = {
    schema: 1,
    version: '1.6.0',
    board: device.board,
    compat: {},
    createdAt: '2026-11-25T10:00:00Z',
    artifacts: [{ kind: 'agent', name: 'a.mjs', sha256: 'b'.repeat(64), size: 1, urls: ['https://x/a'] }],
    ...patch,
  };
  const bytes = Buffer.from(JSON.stringify(m));
  return { bytes, sig: encodeUsignSignature(signUsign(bytes, key.secretKey)) };
}
const reason = (r: ReturnType<typeof checkRelease>) => (r.ok ? 'ok' : r.reason);

test('the gate accepts a good release and names why it refuses each bad one', () => {
  const good = signed();
  assert.equal(reason(checkRelease(good.bytes, good.sig, [key.publicKey], device)), 'ok');
  assert.equal(reason(checkRelease(good.bytes, undefined, [key.publicKey], device)), 'unsigned');
  assert.equal(reason(checkRelease(Buffer.concat([good.bytes, Buffer.from(' ')]), good.sig, [key.publicKey], device)), 'bad-signature');
  assert.equal(reason(checkRelease(good.bytes, good.sig, [generateUsignKeyPair().publicKey], device)), 'bad-signature');
  const board = signed({ board: 'friendlyarm,nanopi-r4s' });
  assert.equal(reason(checkRelease(board.bytes, board.sig, [key.publicKey], device)), 'wrong-board');
  const compat = signed({ compat: { minVersion: '1.5.1' } });
  assert.equal(reason(checkRelease(compat.bytes, compat.sig, [key.publicKey], device)), 'incompatible');
  const os = signed({
    compat: { osCompatVersion: '2.0' },
    artifacts: [{ kind: 'sysupgrade', name: 'i.img', sha256: 'c'.repeat(64), size: 1, urls: ['https://x/i'] }],
  });
  assert.equal(reason(checkRelease(os.bytes, os.sig, [key.publicKey], device)), 'incompatible');
  const old = signed({ version: '1.4.9' });
  assert.equal(reason(checkRelease(old.bytes, old.sig, [key.publicKey], device)), 'downgrade');
  const junk = Buffer.from('not json');
  assert.equal(reason(checkRelease(junk, encodeUsignSignature(signUsign(junk, key.secretKey)), [key.publicKey], device)), 'bad-manifest');
});

test('an oversize manifest is refused by its size, before any signature work', () => {
  const huge = Buffer.alloc(100 * 1024 * 1024, 0x20);
  let signatureChecked = false;
  // A signature that would make verification throw if it were ever parsed: it must not be reached.
  const sig = {
    trim() {
      signatureChecked = true;
      return 'x';
    },
  } as unknown as string;
  const t0 = process.hrtime.bigint();
  const r = checkRelease(huge, sig, [key.publicKey], device);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(reason(r), 'bad-manifest');
  assert.match(r.ok ? '' : r.detail, /larger than 65536 bytes/);
  assert.equal(signatureChecked, false, 'the signature was never looked at');
  assert.ok(ms < 1_000);
});
