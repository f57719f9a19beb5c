// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMounts, targetProblems, type TargetFacts } from '../../../../src/factory/core/target-checks.js';

const base: TargetFacts = { path: '/dev/sdb', kind: 'block', sizeBytes: 8e9, mountedAt: [], disk: '/dev/sdb', rootDisk: '/dev/vda' };
const needs = { minBytes: 200e6, fileMayGrow: false };

test('a clean, big enough, unmounted, non-root disk has no problems', () => {
  assert.deepEqual(targetProblems(base, needs), []);
});

test('each unsafe condition is named', () => {
  const codes = (f: Partial<TargetFacts>, n = needs): string[] => targetProblems({ ...base, ...f }, n).map((p) => p.code);
  assert.deepEqual(codes({ mountedAt: ['/mnt'] }), ['mounted']);
  assert.deepEqual(codes({ path: '/dev/vda', disk: '/dev/vda' }), ['root-disk']);
  assert.deepEqual(codes({ path: '/dev/vda2', disk: '/dev/vda' }), ['root-disk']);
  assert.deepEqual(codes({ sizeBytes: 100e6 }), ['too-small']);
  assert.deepEqual(codes({ kind: 'file', sizeBytes: 0 }, { minBytes: 200e6, fileMayGrow: true }), []);
  assert.deepEqual(codes({ kind: 'missing', sizeBytes: 0 }), []);
  assert.deepEqual(codes({ kind: 'other' }), ['not-a-disk']);
});

test('/proc/mounts parsing decodes octal escapes', () => {
  assert.deepEqual(parseMounts('/dev/sdb1 /media/my\\040disk ext4 rw 0 0\nproc /proc proc rw 0 0\n'), [
    { device: '/dev/sdb1', mountpoint: '/media/my disk' },
    { device: 'proc', mountpoint: '/proc' },
  ]);
});
