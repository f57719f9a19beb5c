// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { artifactAnswer, artifactPath, methodAllowed } from '../../../../src/ota/core/artifact-response.js';

test('a request names a file under the served directory, never outside it', () => {
  assert.equal(artifactPath('/srv/a', '/rel/agent.bin'), '/srv/a/rel/agent.bin');
  assert.equal(artifactPath('/srv/a', '/x%20y'), '/srv/a/x y');
  assert.equal(artifactPath('/srv/a', '/../etc/passwd'), undefined);
  assert.equal(artifactPath('/srv/a', '/%2e%2e/etc/passwd'), undefined);
  assert.equal(artifactPath('/srv/a', '/'), undefined, 'the directory itself is not a file');
  assert.equal(artifactPath('/srv/a', '/%E0%A4%A'), undefined, 'a malformed escape is not found, not a crash');
});

test('GET and HEAD only', () => {
  assert.ok(methodAllowed('GET') && methodAllowed('HEAD'));
  assert.ok(!methodAllowed('POST') && !methodAllowed(undefined));
});

test('whole file, a resumed range, an unsatisfiable one, HEAD and an empty file', () => {
  const full = artifactAnswer('GET', 100, undefined);
  assert.equal(full.status, 200);
  assert.ok(full.kind === 'file');
  assert.deepEqual(full.range, { start: 0, end: 99 });
  assert.equal(full.headers['content-length'], 100);
  const part = artifactAnswer('GET', 100, 'bytes=40-');
  assert.equal(part.status, 206);
  assert.ok(part.kind === 'file');
  assert.deepEqual(part.range, { start: 40, end: 99 });
  assert.equal(part.headers['content-range'], 'bytes 40-99/100');
  assert.equal(part.headers['content-length'], 60);
  const bad = artifactAnswer('GET', 100, 'bytes=100-');
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */100');
  const head = artifactAnswer('HEAD', 100, undefined);
  assert.ok(head.kind === 'file' && head.range === undefined && head.headers['content-length'] === 100);
  const empty = artifactAnswer('GET', 0, undefined);
  assert.ok(empty.kind === 'file' && empty.range === undefined);
});
