// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCode } from '../../../../src/shared/errors.js';
import {
  admitDevice,
  claimDevice,
  EMPTY_REGISTRY,
  enrollmentDecision,
  importAllowlist,
  parseRegistry,
  revokeDevice,
} from '../../../../src/shared/registry/registry.js';
import { RegistryWatcher, readRegistryFile, updateRegistryFile } from '../../../../src/shared/registry/registry-file.js';
import { tempDir } from '../../../helpers/tmp.js';

const NOW = new Date('2026-11-25T12:00:00Z');
const BASE = parseRegistry({
  version: 1,
  tenants: {
    acme: { segments: { lan: { vni: 1001, vteps: ['198.51.100.2'] } } },
    globex: { segments: { lan: { vni: 1002, vteps: ['198.51.100.3'], multiSite: true } } },
  },
  devices: {},
  denylist: [],
});

test('a device goes allowed -> claimed -> revoked and the headend/EST answers follow', () => {
  let reg = importAllowlist(BASE, [{ serial: 'CK-0001', batch: 'B1' }], NOW);
  assert.deepEqual(enrollmentDecision(reg, 'CK-0001'), { ok: false, reason: 'unclaimed' });
  assert.equal(admitDevice(reg, 'CK-0001').ok, false);
  reg = claimDevice(reg, 'CK-0001', 'acme', NOW);
  assert.deepEqual(enrollmentDecision(reg, 'CK-0001'), { ok: true, tenant: 'acme' });
  const adm = admitDevice(reg, 'CK-0001');
  assert.ok(adm.ok);
  assert.equal(adm.segment.vni, 1001);
  assert.deepEqual(adm.segment.vteps, ['198.51.100.2']);
  reg = revokeDevice(reg, 'CK-0001', NOW);
  assert.deepEqual(enrollmentDecision(reg, 'CK-0001'), { ok: false, reason: 'denylisted' });
  assert.deepEqual(admitDevice(reg, 'CK-0001'), { ok: false, serial: 'CK-0001', reason: 'denylisted' });
  assert.ok(reg.denylist.includes('CK-0001'));
  assert.throws(
    () => claimDevice(reg, 'CK-0001', 'acme', NOW),
    (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY'),
  );
});

test('unknown serials and tenants are refused with a reason', () => {
  assert.deepEqual(admitDevice(BASE, 'CK-9999'), { ok: false, serial: 'CK-9999', reason: 'unknown-serial' });
  assert.throws(() => claimDevice(BASE, 'CK-9999', 'acme', NOW), /import the factory allowlist/);
  const reg = importAllowlist(BASE, [{ serial: 'CK-0002' }], NOW);
  assert.throws(() => claimDevice(reg, 'CK-0002', 'nobody', NOW), /unknown tenant/);
});

test('validation names the JSON path: duplicate VNIs, bad VNI, claimed device without tenant', () => {
  const bad: [unknown, RegExp][] = [
    [{ version: 2 }, /version/],
    [{ version: 1, tenants: { a: { segments: { x: { vni: 5 } } }, b: { segments: { y: { vni: 5 } } } } }, /already used by a\/x/],
    [{ version: 1, tenants: { a: { segments: { x: { vni: 0x1000000 } } } } }, /tenants\.a\.segments\.x\.vni/],
    [{ version: 1, devices: { 'CK-1': { state: 'claimed' } } }, /devices\.CK-1\.tenant/],
    [{ version: 1, tenants: { a: { segments: { x: { vni: 7, vteps: ['999.1..2'] } } } } }, /tenants\.a\.segments\.x\.vteps/],
    [{ version: 1, tenants: { a: { segments: { x: { vni: 7, vtepPathMtu: 1550.5 } } } } }, /vtepPathMtu/],
    [{ version: 1, devices: { 'bad serial': { state: 'allowed' } } }, /devices\.bad serial/],
  ];
  for (const [doc, re] of bad) assert.throws(() => parseRegistry(doc), re);
});

test('file storage: missing file is empty, updates are atomic, the watcher sees edits', async (t) => {
  const dir = tempDir(t, 'ck-reg-').dir;
  const path = join(dir, 'registry.json');
  assert.deepEqual(readRegistryFile(path), EMPTY_REGISTRY);
  writeFileSync(path, JSON.stringify(BASE));
  const watcher = new RegistryWatcher(path);
  assert.equal(admitDevice(watcher.get(), 'CK-0003').ok, false);
  await Promise.all([
    updateRegistryFile(path, (r) => importAllowlist(r, [{ serial: 'CK-0003' }], NOW)),
    updateRegistryFile(path, (r) => importAllowlist(r, [{ serial: 'CK-0004' }], NOW)),
  ]);
  await updateRegistryFile(path, (r) => claimDevice(r, 'CK-0003', 'acme', NOW));
  const reg = watcher.get();
  assert.equal(admitDevice(reg, 'CK-0003').ok, true);
  assert.ok(reg.devices['CK-0004'], 'concurrent writers must not lose an update');
  writeFileSync(path, '{ not json');
  assert.throws(
    () => watcher.reload(),
    (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY'),
  );
});

test('a device claimed onto a named segment joins that segment, not the first one', () => {
  const reg0 = parseRegistry({
    version: 1,
    tenants: { acme: { segments: { a: { vni: 2001 }, b: { vni: 2002 } } } },
  });
  const reg = claimDevice(importAllowlist(reg0, [{ serial: 'CK-0010' }], NOW), 'CK-0010', 'acme', NOW, 'b');
  const adm = admitDevice(reg, 'CK-0010');
  assert.ok(adm.ok);
  assert.equal(adm.segmentName, 'b');
  assert.equal(adm.segment.vni, 2002);
});

test('an allowlisted device that names a tenant but was never claimed is neither admitted nor enrolled', () => {
  const reg = parseRegistry({
    version: 1,
    tenants: { acme: { segments: { lan: { vni: 1001 } } } },
    devices: { 'CK-0011': { state: 'allowed', tenant: 'acme', updatedAt: '' } },
  });
  assert.deepEqual(admitDevice(reg, 'CK-0011'), { ok: false, serial: 'CK-0011', reason: 'unclaimed' });
  assert.deepEqual(enrollmentDecision(reg, 'CK-0011'), { ok: false, reason: 'unclaimed' });
});

test('unknown keys are refused with their JSON path and the closest known key; flags must be booleans', () => {
  const bad: [unknown, RegExp][] = [
    [
      { version: 1, tenants: { acme: { segments: { lan: { vni: 7, vtep: ['198.51.100.2'] } } } } },
      /^registry tenants\.acme\.segments\.lan\.vtep: unknown key; did you mean vteps\?/,
    ],
    [
      { version: 1, tenants: { acme: { segments: { lan: { vni: 7, multiSite: 'yes' } } } } },
      /tenants\.acme\.segments\.lan\.multiSite: must be true or false/,
    ],
    [
      { version: 1, devices: { 'CK-1': { state: 'allowed', tennant: 'acme' } } },
      /devices\.CK-1\.tennant: unknown key; did you mean tenant\?/,
    ],
    [{ version: 1, denylsit: [] }, /denylsit: unknown key; did you mean denylist\?/],
  ];
  for (const [doc, re] of bad)
    assert.throws(
      () => parseRegistry(doc),
      (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY') && re.test((e as Error).message),
      String(re),
    );
});
