// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  csvField,
  csvHeader,
  csvLine,
  jsonLine,
  MANIFEST_COLUMNS,
  type ManifestRecord,
} from '../../../../src/factory/core/batch-manifest.js';

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
