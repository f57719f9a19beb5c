// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeReleaseManifest, parseReleaseManifest } from '../../../../src/shared/ota/manifest.js';
import { imageRelease } from '../../../../src/image/core/release.js';

test('the release of a build lists the image and the agent under the base URL, dated SOURCE_DATE_EPOCH', () => {
  const m = imageRelease({
    version: '0.1.0',
    boardName: 'friendlyarm,nanopi-r3s',
    osCompatVersion: '1.1',
    sourceDateEpoch: 1_764_000_000,
    urlBase: 'https://updates.example.net/r3s/',
    image: { name: 'img.gz', sha256: 'a'.repeat(64), size: 10 },
    agent: { name: 'agent', sha256: 'b'.repeat(64), size: 20 },
  });
  assert.deepEqual(parseReleaseManifest(Buffer.from(encodeReleaseManifest(m))), m, 'devices accept it');
  assert.deepEqual(
    m.artifacts.map((a) => [a.kind, a.urls[0]]),
    [
      ['sysupgrade', 'https://updates.example.net/r3s/img.gz'],
      ['agent', 'https://updates.example.net/r3s/agent'],
    ],
  );
  assert.equal(m.createdAt, '2025-11-24T16:00:00Z');
});
