// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { hasCode } from '../../../../src/shared/errors.js';
import { parseRegistry } from '../../../../src/shared/registry/registry.js';
import { FileRegistryStore } from '../../../../src/shared/registry/registry-file.js';
import { describeRegistrySource, parseRegistrySource } from '../../../../src/shared/registry/source.js';
import { tempDir } from '../../../helpers/tmp.js';

test('registry source: the old string form still means the JSON file', () => {
  assert.deepEqual(parseRegistrySource('/etc/connector/registry.json'), { kind: 'file', path: '/etc/connector/registry.json' });
});

test('registry source: { file } and { postgres } pick the backend', () => {
  assert.deepEqual(parseRegistrySource({ file: '/r.json' }), { kind: 'file', path: '/r.json' });
  assert.deepEqual(parseRegistrySource({ postgres: 'postgres://ck@/registry?host=/run/pg' }), {
    kind: 'postgres',
    url: 'postgres://ck@/registry?host=/run/pg',
  });
  assert.equal(parseRegistrySource('postgresql://h/db').kind, 'postgres');
});

test('registry source: bad values are config errors naming the problem', () => {
  for (const bad of [
    '',
    42,
    null,
    [],
    {},
    { file: '/a', postgres: 'postgres://h/d' },
    { file: '' },
    { mysql: 'x' },
    { postgres: 'http://h/d' },
  ]) {
    assert.throws(
      () => parseRegistrySource(bad),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
      JSON.stringify(bad),
    );
  }
});

test('registry source: the description for logs hides the password', () => {
  const d = describeRegistrySource({ kind: 'postgres', url: 'postgres://ck:s3cret@db.example/registry' });
  assert.ok(!d.includes('s3cret'), d);
  assert.match(d, /db\.example/);
});

test('file store: update is seen by current() and by another store on the same file', async (t) => {
  const { dir } = tempDir(t);
  const path = join(dir, 'registry.json');
  const a = new FileRegistryStore(path, 20);
  const b = new FileRegistryStore(path, 20);
  let seen = 0;
  const stop = b.watch(() => seen++);
  t.after(stop);
  const tenants = { acme: { segments: { lan: { vni: 100, vteps: [], multiSite: false, allowDhcpFromDc: false, vtepPathMtu: 1550 } } } };
  await a.update((r) => parseRegistry({ ...r, tenants }));
  assert.deepEqual(Object.keys(a.current().tenants), ['acme']);
  assert.deepEqual(Object.keys((await b.reload()).tenants), ['acme']);
  for (let i = 0; i < 250 && seen === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(seen > 0, 'watch reports the change');
  await a.close();
  await b.close();
});
