// SPDX-License-Identifier: UNLICENSED
// The arm64 system test's inputs: the lock pins what it should, and a missing input fails with its name,
// where it comes from and how to provide it (no network, no root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../../helpers/tmp.js';
import { readVmLock, vmInputs } from './inputs.js';

test('vm.lock.json pins the arm64 kernel and a static busybox by version, URL and sha256', () => {
  const lock = readVmLock();
  assert.deepEqual(
    lock.map((i) => i.name),
    ['linux-image-arm64', 'busybox-static'],
  );
  for (const i of lock) {
    assert.match(i.sha256, /^[0-9a-f]{64}$/);
    assert.ok(i.url.endsWith('_arm64.deb') && i.size > 0, i.name);
  }
  assert.equal(lock[0]?.fallback, 'linux-image-arm64', 'the kernel has a way out when the security pool drops it');
});

test('a missing input fails naming the file, its URL, where to put it and the mirror variable', async (t) => {
  const d = tempDir(t, 'ck-a64-inputs-');
  await assert.rejects(vmInputs(readVmLock(), { cacheDir: d.path('cache'), mirrorDir: d.path('mirror'), offline: true }), (e: Error) => {
    assert.match(e.message, /build input\(s\) missing \(offline\)/);
    assert.match(e.message, /linux-image-6\.1\.0-57-arm64_6\.1\.192-3_arm64\.deb/);
    assert.match(e.message, /from: http:\/\/deb\.debian\.org\/debian-security\//);
    assert.ok(e.message.includes(d.path('mirror/deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb')));
    assert.match(e.message, /CK_IMAGE_MIRROR=DIR/);
    return true;
  });
});
