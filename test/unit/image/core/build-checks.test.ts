// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { checkHostNode, checkImageBuilderListed, checkRuntimeLibs } from '../../../../src/image/core/build-checks.js';
import type { BuildInputs, LockedInput } from '../../../../src/image/core/lock.js';

const input = (name: string, file: string, sha256?: string): LockedInput =>
  ({ name, role: 'imagebuilder', version: '24.10.4', url: `https://x/${file}`, file, ...(sha256 ? { sha256 } : {}) }) as LockedInput;

const inputs = {
  imagebuilder: input('ib', 'openwrt-imagebuilder.tar.zst', 'a'.repeat(64)),
  sums: input('sums', 'sha256sums'),
} as unknown as BuildInputs;

test('the signed checksum list must name the ImageBuilder with the pinned hash', () => {
  checkImageBuilderListed(`${'a'.repeat(64)} *openwrt-imagebuilder.tar.zst\n`, inputs);
  assert.throws(
    () => checkImageBuilderListed(`${'a'.repeat(64)} *other.tar.zst\n`, inputs),
    (e) => isImageFailure(e, 'not-in-sums'),
  );
  assert.throws(
    () => checkImageBuilderListed(`${'b'.repeat(64)} *openwrt-imagebuilder.tar.zst\n`, inputs),
    (e) => isImageFailure(e, 'input-tampered'),
  );
});

test('the host Node must be the target version; the binary may need only the shipped libraries', () => {
  checkHostNode('v24.11.1', '24.11.1');
  assert.throws(
    () => checkHostNode('v22.0.0', '24.11.1'),
    (e) => isImageFailure(e, 'sea-failed'),
  );
  checkRuntimeLibs(['libc.so.6'], ['libc.so.6', 'libm.so.6']);
  assert.throws(
    () => checkRuntimeLibs(['libc.so.6', 'libz.so.1'], ['libc.so.6']),
    (e) => isImageFailure(e, 'sea-failed'),
  );
});
