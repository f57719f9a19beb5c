// SPDX-License-Identifier: UNLICENSED
// The PostgreSQL registry backend against a real server started here: propagation by LISTEN/NOTIFY,
// concurrent writers, versioned schema, connection loss and a broken row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { hasCode } from '../../../../src/shared/errors.js';
import { admitDevice, claimDevice, importAllowlist, parseRegistry, type Registry } from '../../../../src/shared/registry/registry.js';
import { PostgresRegistryStore } from '../../../../src/shared/registry/registry-postgres.js';
import { startPostgres } from '../../../helpers/postgres.js';
import { waitFor } from '../../../helpers/wait.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const TENANTS = { acme: { segments: { lan: { vni: 100, vteps: ['192.0.2.10'] } } } };

function withTenants(r: Registry): Registry {
  return parseRegistry({ ...r, tenants: TENANTS });
}

async function open(t: { after(fn: () => Promise<void>): void }, url: string): Promise<PostgresRegistryStore> {
  const s = await PostgresRegistryStore.open(url, { backoffMs: { min: 50, max: 400 } });
  t.after(() => s.close());
  return s;
}

test('postgres registry: a change reaches every subscriber by NOTIFY, and admission sees it', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  const writer = await open(t, url);
  const readers = [await open(t, url), await open(t, url), await open(t, url)];
  const seen = readers.map(() => 0);
  readers.forEach((r, i) => t.after(r.watch(() => seen[i]!++)));
  await writer.update(withTenants);
  const t0 = performance.now();
  await writer.update((r) => claimDevice(importAllowlist(r, [{ serial: 'CK1' }], NOW), 'CK1', 'acme', NOW));
  await waitFor('every reader to see CK1 claimed', 5_000, () => readers.every((r) => admitDevice(r.current(), 'CK1').ok));
  t.diagnostic(`propagation to 3 subscribers: ${(performance.now() - t0).toFixed(1)} ms`);
  assert.ok(
    seen.every((n) => n > 0),
    'watch fired on every reader',
  );
  assert.deepEqual(readers[0]!.current(), writer.current());
  assert.equal(readers[0]!.status().revision, writer.status().revision);
  // Units only changed: readers apply just those rows; a removed unit disappears everywhere too.
  await writer.update((r) => importAllowlist(r, [{ serial: 'CK2' }], NOW));
  await writer.update((r) => {
    const devices = { ...r.devices };
    delete devices['CK1'];
    return parseRegistry({ ...r, devices });
  });
  await waitFor('every reader to drop CK1', 5_000, () => readers.every((r) => !r.current().devices['CK1'] && r.current().devices['CK2']));
  for (const r of readers) assert.deepEqual(r.current(), (await open(t, url)).current(), 'incremental = full load');
});

test('postgres registry: concurrent writers never lose an update', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  const a = await open(t, url);
  const b = await open(t, url);
  await a.update(withTenants);
  const add = (s: PostgresRegistryStore, serial: string): Promise<Registry> => s.update((r) => importAllowlist(r, [{ serial }], NOW));
  const writes: Promise<Registry>[] = [];
  for (let i = 0; i < 25; i++) writes.push(add(a, `A${i}`), add(b, `B${i}`));
  await Promise.all(writes);
  const fresh = await open(t, url);
  assert.equal(Object.keys(fresh.current().devices).length, 50);
  assert.equal(fresh.status().revision, 51, 'one revision per write');
});

test('postgres registry: the schema is versioned and a newer one is refused', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  await (await open(t, url)).update(withTenants);
  const again = await open(t, url); // migrating twice is a no-op and keeps the data
  assert.deepEqual(Object.keys(again.current().tenants), ['acme']);
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // the server may stop first at the end of the test
  await c.connect();
  t.after(() => c.end());
  assert.equal((await c.query('SELECT version FROM ck_schema')).rows[0].version, 1);
  await c.query('UPDATE ck_schema SET version = 99');
  await assert.rejects(PostgresRegistryStore.open(url), (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY') && /newer/.test(String(e)));
});

test('postgres registry: a bad row is refused and the last good registry kept', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  const s = await open(t, url);
  await s.update(withTenants);
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // the server may stop first at the end of the test
  await c.connect();
  t.after(() => c.end());
  await c.query(`INSERT INTO ck_devices VALUES ('BAD', '{"state":"claimed","tenant":"nobody"}', 2)`);
  await c.query('UPDATE ck_registry SET rev = 2');
  await assert.rejects(s.reload(), (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY'));
  assert.deepEqual(Object.keys(s.current().tenants), ['acme']);
  assert.equal(s.status().revision, 1);
});

test('postgres registry: connection loss keeps the last good registry, and it catches up after reconnect', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  const s = await open(t, url);
  await s.update(withTenants);
  pgs.stop();
  await waitFor('the store to notice the loss', 5_000, () => !s.status().connected);
  assert.deepEqual(Object.keys(s.current().tenants), ['acme'], 'still serves the last good registry');
  await assert.rejects(s.reload(), (e: unknown) => hasCode(e, 'CK_ERR_REGISTRY_DB'));
  pgs.start();
  const other = await open(t, url);
  await other.update((r) => importAllowlist(r, [{ serial: 'LATE' }], NOW));
  await waitFor('the store to reconnect and catch up', 10_000, () => s.status().connected && s.current().devices['LATE']);
});
