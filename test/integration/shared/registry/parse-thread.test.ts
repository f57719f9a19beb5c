// SPDX-License-Identifier: UNLICENSED
// The file registry's reload parses in a thread of its own: the caller's loop keeps turning meanwhile,
// the answer is what a parse on the loop gives, an unchanged file gives back the same registry, and a
// broken file is refused with the same error while the next good one still applies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { hasCode } from '../../../../src/shared/errors.js';
import { readRegistryFile, FileRegistryStore } from '../../../../src/shared/registry/registry-file.js';
import { EMPTY_REGISTRY } from '../../../../src/shared/registry/registry.js';
import { tempDir } from '../../../helpers/tmp.js';

function doc(tenants: number, extra = 0): unknown {
  const t: Record<string, unknown> = {};
  const devices: Record<string, unknown> = {};
  for (let i = 0; i < tenants + extra; i++) {
    t[`t${i}`] = { segments: { lan: { vni: 1000 + i, vteps: ['192.0.2.1'] } } };
    devices[`CK-${i}`] = { state: 'claimed', tenant: `t${i}`, updatedAt: '2026-12-05T00:00:00Z' };
  }
  return { version: 1, tenants: t, devices, denylist: [] };
}

test('file registry: a reload parses off the caller loop and equals a parse on it', async (t) => {
  const { path } = tempDir(t);
  const file = path('registry.json');
  const store = new FileRegistryStore(file);
  t.after(() => store.close());
  assert.deepStrictEqual(await store.reload(), EMPTY_REGISTRY, 'a missing file is the empty registry');

  writeFileSync(file, JSON.stringify(doc(5_000)));
  // A parse of 5,000 tenants and units takes tens of milliseconds: on the loop, no tick would run.
  let ticks = 0;
  let done = false;
  const tick = (): void => {
    ticks++;
    if (!done) setImmediate(tick);
  };
  setImmediate(tick);
  const reg = await store.reload();
  done = true;
  assert.ok(ticks > 10, `the loop turned ${ticks} times during the parse`);
  assert.deepStrictEqual(reg, readRegistryFile(file));
  assert.equal(store.current(), reg, 'current() serves what reload parsed, without parsing again');
  assert.equal(await store.reload(), reg, 'the same file: the same registry');

  writeFileSync(file, JSON.stringify(doc(5_000, 1)));
  const next = await store.reload();
  assert.deepStrictEqual(next, readRegistryFile(file));
  assert.equal(next.tenants['t0'], reg.tenants['t0'], 'an unchanged tenant keeps its identity');
  assert.equal(next.devices['CK-7'], reg.devices['CK-7'], 'an unchanged unit keeps its identity');
});

test('file registry: a broken file is refused with the parse error, and the next good one applies', async (t) => {
  const { path } = tempDir(t);
  const file = path('registry.json');
  const store = new FileRegistryStore(file);
  t.after(() => store.close());
  writeFileSync(file, JSON.stringify(doc(3)));
  const first = await store.reload();

  writeFileSync(file, '{"version": 1, "tenants": ');
  await assert.rejects(store.reload(), (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY') && /is not valid JSON/.test((e as Error).message));
  writeFileSync(file, JSON.stringify({ version: 1, tenants: { t0: { segments: { lan: { vni: 'x' } } } } }));
  await assert.rejects(
    store.reload(),
    (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY') && /tenants\.t0\.segments\.lan\.vni/.test((e as Error).message),
  );

  writeFileSync(file, JSON.stringify(doc(3, 1)));
  const next = await store.reload();
  assert.deepStrictEqual(next, readRegistryFile(file));
  assert.equal(next.tenants['t1'], first.tenants['t1'], 'the delta applies to the last good registry');
});
