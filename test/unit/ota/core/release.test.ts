// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { hasCode } from '../../../../src/shared/errors.js';
import { parseReleaseManifest } from '../../../../src/shared/ota/manifest.js';
import { composeRelease } from '../../../../src/ota/core/release.js';

const NOW = new Date('2026-06-01T12:00:00Z');

test("the manifest carries each artifact's sha256 and size, and parses as the devices parse it", () => {
  const data = Buffer.from('agent binary');
  const { manifest, text } = composeRelease({
    version: '1.2.3',
    board: 'friendlyarm,nanopi-r3s',
    minVersion: '1.0.0',
    createdAt: NOW,
    artifacts: [{ kind: 'agent', name: 'agent.bin', data, urls: ['https://u/agent.bin'] }],
  });
  assert.deepEqual(parseReleaseManifest(Buffer.from(text)), manifest);
  assert.equal(manifest.artifacts[0]?.sha256, createHash('sha256').update(data).digest('hex'));
  assert.equal(manifest.artifacts[0]?.size, data.length);
  assert.deepEqual(manifest.compat, { minVersion: '1.0.0' });
  assert.equal(manifest.createdAt, NOW.toISOString());
});

test('an invalid release (plain http URL) is refused before anything is signed', () => {
  assert.throws(
    () =>
      composeRelease({
        version: '1.2.3',
        board: 'b',
        createdAt: NOW,
        artifacts: [{ kind: 'agent', name: 'a', data: Buffer.alloc(1), urls: ['http://u/a'] }],
      }),
    (e) => hasCode(e, 'CK_ERR_OTA_MANIFEST'),
  );
});
