// SPDX-License-Identifier: UNLICENSED
// The station's decisions over an in-memory disk: a bare disk without a partition table is refused
// unless forced, a dry run writes nothing, a forced run writes a block that reads back, records the unit
// in the manifest and never keeps the IDevID key; a target that is already provisioned is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../../src/shared/log.js';
import { hasCode } from '../../../../src/shared/errors.js';
import { createSelfSignedCa, generateKeyPair, type Issuer } from '../../../../src/shared/pki/x509.js';
import { decodeFactoryBlock, FACTORY_BLOCK_OFFSET, FACTORY_REGION_SIZE } from '../../../../src/shared/factory-block/factory-block.js';
import type { ManifestRecord } from '../../../../src/factory/core/batch-manifest.js';
import type { StationPorts } from '../../../../src/factory/core/ports.js';
import { provisionUnit, type ProvisionOptions } from '../../../../src/factory/core/provision.js';

const NOW = new Date('2026-05-01T08:00:00Z');
const DISK_BYTES = 32 * 1024 * 1024;

async function memoryStation() {
  const keys = await generateKeyPair();
  const ca: Issuer = {
    cert: await createSelfSignedCa({ cn: 'factory' }, keys, NOW, new Date(NOW.getTime() + 1e10)),
    privateKey: keys.privateKey,
  };
  const anchor = (await createSelfSignedCa({ cn: 'dc' }, await generateKeyPair(), NOW, new Date(NOW.getTime() + 1e10))).toString('pem');
  const disk = Buffer.alloc(DISK_BYTES);
  const records: ManifestRecord[] = [];
  let writes = 0;
  const io: StationPorts = {
    readAnchor: () => anchor,
    caExists: () => true,
    loadCa: async () => ca,
    inspectImage: () => assert.fail('no image in these tests'),
    readImageHead: async () => assert.fail('no image in these tests'),
    readSector0: () => disk.subarray(0, 512),
    targetFacts: (path) => ({ path, kind: 'file', sizeBytes: disk.length, mountedAt: [] }),
    readRegion: (_t, offset) => Buffer.from(disk.subarray(offset, offset + FACTORY_REGION_SIZE)),
    writeRegion: (_t, offset, block) => {
      writes++;
      disk.fill(0, offset, offset + FACTORY_REGION_SIZE);
      block.copy(disk, offset);
    },
    writeImage: async () => assert.fail('no image in these tests'),
    hashTarget: () => assert.fail('no image in these tests'),
    appendManifest: (dir, r) => {
      records.push(r);
      return { csv: `${dir}/${r.batch}.csv`, jsonl: `${dir}/${r.batch}.jsonl`, allowlist: `${dir}/${r.batch}.allowlist.jsonl` };
    },
  };
  return { io, disk, records, writes: () => writes };
}

const opts = (o: Partial<ProvisionOptions> = {}): ProvisionOptions => ({
  serial: 'UNIT-7',
  target: '/tmp/unit.img',
  batch: 'B1',
  station: 'st1',
  hwRev: '1.0',
  macs: [],
  caDir: '/ca',
  estUrl: 'https://est.example:8443/.well-known/est',
  dcAnchorFile: '/dc.pem',
  manifestDir: '/m',
  force: false,
  dryRun: false,
  now: () => NOW,
  log: silentLogger,
  ...o,
});

test('a disk without a partition table: the dry run names the problem and writes nothing; a real run refuses', async () => {
  const s = await memoryStation();
  const dry = await provisionUnit(opts({ dryRun: true }), s.io);
  assert.deepEqual(
    dry.problems.map((p) => p.code),
    ['no-partition-table'],
  );
  assert.equal(s.writes(), 0);
  await assert.rejects(provisionUnit(opts(), s.io), (e) => hasCode(e, 'CK_ERR_FACTORY'));
  assert.equal(s.writes(), 0);
});

test('forced: the block reads back, the manifest records the unit, the key is only on the unit', async () => {
  const s = await memoryStation();
  const r = await provisionUnit(opts({ force: true }), s.io);
  assert.equal(r.forced, true);
  const back = decodeFactoryBlock(s.disk.subarray(FACTORY_BLOCK_OFFSET));
  assert.ok(back.ok);
  assert.equal(back.data.serial, 'UNIT-7');
  assert.equal(back.data.createdAt, NOW.toISOString());
  assert.equal(s.records.length, 1);
  assert.equal(s.records[0]?.idevidFingerprint, r.record?.idevidFingerprint);
  assert.ok(!JSON.stringify(s.records).includes('PRIVATE KEY'), 'the manifest never holds the IDevID key');
});

test('a target that already holds a block is refused: the dry run names it', async () => {
  const s = await memoryStation();
  await provisionUnit(opts({ force: true }), s.io);
  const again = await provisionUnit(opts({ dryRun: true, serial: 'UNIT-8' }), s.io);
  assert.ok(again.problems.some((p) => p.code === 'already-provisioned'));
});

test('bad names are refused before anything is read', async () => {
  const s = await memoryStation();
  for (const bad of [
    { serial: 'no spaces' },
    { batch: '../x' },
    { macs: ['AA:BB:CC:DD:EE:FF'] },
    { estUrl: 'http://est' },
    { offset: 1000 },
  ]) {
    await assert.rejects(provisionUnit(opts(bad), s.io), (e) => hasCode(e, 'CK_ERR_FACTORY'), JSON.stringify(bad));
  }
});
