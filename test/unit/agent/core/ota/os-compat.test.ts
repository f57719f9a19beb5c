// SPDX-License-Identifier: UNLICENSED
// The device's OpenWrt compat_version, as the release gate compares it with a sysupgrade's: an OS release
// the image build makes (compat 1.0 unless its metadata says otherwise) is accepted by a stock unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeUsignSignature, generateUsignKeyPair, signUsign } from '../../../../../src/shared/usign/index.js';
import { osCompatVersionOf } from '../../../../../src/agent/core/ota/os-compat.js';
import { checkRelease } from '../../../../../src/agent/core/ota/verify-release.js';

const SYSTEM = (extra: string): string =>
  `config system\n\toption hostname 'OpenWrt'\n${extra}\nconfig timeserver 'ntp'\n\toption enabled '1'\n`;

test('compat_version comes from the system section; absent or malformed means 1.0', () => {
  assert.equal(osCompatVersionOf(SYSTEM("\toption compat_version '1.1'")), '1.1');
  assert.equal(osCompatVersionOf(SYSTEM('')), '1.0');
  assert.equal(osCompatVersionOf(SYSTEM("\toption compat_version 'one'")), '1.0');
  assert.equal(osCompatVersionOf('not uci at all {'), '1.0');
});

test('an OS release with compat 1.0 passes the gate on a stock unit, and one for 1.1 does not', () => {
  const key = generateUsignKeyPair();
  const release = (osCompatVersion: string): { bytes: Buffer; sig: string } => {
    const bytes = Buffer.from(
      JSON.stringify({
        schema: 1,
        version: '2.0.0',
        board: 'friendlyarm,nanopi-r3s',
        compat: { osCompatVersion },
        createdAt: '2026-12-01T10:00:00Z',
        artifacts: [{ kind: 'sysupgrade', name: 'i.img', sha256: 'c'.repeat(64), size: 1, urls: ['https://x/i'] }],
      }),
    );
    return { bytes, sig: encodeUsignSignature(signUsign(bytes, key.secretKey)) };
  };
  const device = { board: 'friendlyarm,nanopi-r3s', version: '1.0.0', osCompatVersion: osCompatVersionOf(SYSTEM('')) };
  const ok = release('1.0');
  assert.equal(checkRelease(ok.bytes, ok.sig, [key.publicKey], device).ok, true);
  const newer = release('1.1');
  const r = checkRelease(newer.bytes, newer.sig, [key.publicKey], device);
  assert.equal(r.ok ? 'ok' : r.reason, 'incompatible');
});
