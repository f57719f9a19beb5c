// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMounts, targetProblems, type TargetFacts } from '../../../../src/factory/adapters/target-checks.js';
import { csvField, csvHeader, csvLine, jsonLine, MANIFEST_COLUMNS, type ManifestRecord } from '../../../../src/factory/adapters/batch-manifest.js';

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

const REC: ManifestRecord = {
  time: '2026-11-25T10:00:00.000Z',
  serial: 'R3S-1',
  hwRev: '1.1',
  macs: ['aa:bb:cc:00:00:01', 'aa:bb:cc:00:00:02'],
  batch: 'B1',
  station: 'st1',
  idevidCertSerial: '0a',
  idevidFingerprint: 'f'.repeat(64),
  idevidSpkiSha256: 'e'.repeat(64),
  imageSha256: '',
  blockSha256: 'd'.repeat(64),
  target: '/dev/mmc, "odd"',
};

test('CSV lines follow RFC 4180 and have one field per column', () => {
  assert.equal(csvHeader(), MANIFEST_COLUMNS.join(',') + '\r\n');
  const line = csvLine(REC);
  assert.ok(line.endsWith('\r\n'));
  assert.match(line, /,"\/dev\/mmc, ""odd"""\r\n$/);
  assert.equal(csvField('=cmd()'), "'=cmd()");
  assert.equal(csvField('plain'), 'plain');
});

test('JSONL lines are one JSON object per line with every column', () => {
  const l = jsonLine(REC);
  assert.equal(l.indexOf('\n'), l.length - 1);
  assert.deepEqual(Object.keys(JSON.parse(l) as object).sort(), [...MANIFEST_COLUMNS].sort());
});
