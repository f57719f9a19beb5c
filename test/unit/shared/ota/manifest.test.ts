// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import { encodeReleaseManifest, parseReleaseManifest } from '../../../../src/shared/ota/manifest.js';
import { compareVersions } from '../../../../src/shared/ota/version.js';

const base = {
  schema: 1,
  version: '1.2.3',
  board: 'friendlyarm,nanopi-r3s',
  compat: { minVersion: '1.0.0' },
  createdAt: '2026-11-25T10:00:00Z',
  artifacts: [{ kind: 'agent', name: 'connector-agent.mjs', sha256: 'a'.repeat(64), size: 10, urls: ['https://u.example/a'] }],
};
const variant = (patch: (m: Record<string, unknown>) => void): string => {
  const m = structuredClone(base) as unknown as Record<string, unknown>;
  patch(m);
  return JSON.stringify(m);
};

test('a valid manifest parses and re-encodes to the same value', () => {
  const m = parseReleaseManifest(JSON.stringify(base));
  assert.equal(m.version, '1.2.3');
  assert.deepEqual(parseReleaseManifest(encodeReleaseManifest(m)), m);
});

test('each invalid field is named in a CK_ERR_OTA_MANIFEST error', () => {
  const art = (m: Record<string, unknown>) => (m['artifacts'] as Record<string, unknown>[])[0] as Record<string, unknown>;
  const cases: [string, (m: Record<string, unknown>) => void][] = [
    ['schema', (m) => (m['schema'] = 2)],
    ['version', (m) => (m['version'] = 'v1')],
    ['board', (m) => (m['board'] = 'Bad Board')],
    ['createdAt', (m) => (m['createdAt'] = 'yesterday')],
    ['compat.minVersion', (m) => (m['compat'] = { minVersion: 'x' })],
    ['artifacts', (m) => (m['artifacts'] = [])],
    ['artifacts[0].kind', (m) => (art(m)['kind'] = 'firmware')],
    ['artifacts[0].name', (m) => (art(m)['name'] = '../etc/passwd')],
    ['artifacts[0].sha256', (m) => (art(m)['sha256'] = 'ABC')],
    ['artifacts[0].size', (m) => (art(m)['size'] = -1)],
    ['artifacts[0].urls[0]', (m) => (art(m)['urls'] = ['http://plain.example/a'])],
  ];
  for (const [field, patch] of cases) {
    assert.throws(
      () => parseReleaseManifest(variant(patch)),
      (e) => hasCode(e, 'CK_ERR_OTA_MANIFEST') && e.message.includes(field),
      field,
    );
  }
  assert.throws(
    () => parseReleaseManifest('{'),
    (e) => hasCode(e, 'CK_ERR_OTA_MANIFEST'),
  );
});

test('versions compare numerically and a prerelease sorts before its release', () => {
  assert.ok(compareVersions('1.10.0', '1.9.9') > 0);
  assert.ok(compareVersions('2.0.0-rc1', '2.0.0') < 0);
  assert.equal(compareVersions('1.2.3', '1.2.3'), 0);
});
