// SPDX-License-Identifier: UNLICENSED
// The operator's registry commands as an operator runs them (`connector tenant|segment|unit|registry`, as
// processes), against the JSON file and a real PostgreSQL: the same commands, the same results, clear
// errors, no lost update when two run at once, and `registry migrate`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { admitDevice, parseRegistry } from '../../../src/shared/registry/registry.js';
import { PostgresRegistryStore } from '../../../src/shared/registry/registry-postgres.js';
import { startPostgres } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function connector(args: readonly string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), ...args],
      { cwd: REPO, timeout: 60_000, env: { ...process.env, CONNECTOR_REGISTRY: '' } },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await connector(args);
  assert.equal(r.code, 0, `connector ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The walk-through of docs/operator-quickstart.md, on one backend. */
async function walkThrough(reg: string): Promise<void> {
  const R = ['--registry', reg];
  await ok(['tenant', 'add', 'acme', ...R]);
  await ok(['segment', 'add', '--tenant', 'acme', '--name', 'lan', '--vni', '100', '--vtep', '192.0.2.10', '--path-mtu', '1600', ...R]);
  await ok(['unit', 'allow', '--serial', 'CK0001', '--batch', 'b1', ...R]);
  await ok(['unit', 'claim', '--serial', 'CK0001', '--tenant', 'acme', '--segment', 'lan', ...R]);
  assert.match(await ok(['tenant', 'list', ...R]), /acme\s+1\s+1/);
  assert.match(await ok(['segment', 'list', ...R]), /acme\s+lan\s+100\s+1600/);
  assert.match(await ok(['unit', 'list', ...R]), /CK0001\s+claimed\s+acme/);

  // Refusals name the problem and change nothing.
  const cases: [string[], RegExp, string][] = [
    [
      ['segment', 'add', '--tenant', 'acme', '--name', 'dmz', '--vni', '100'],
      /VNI 100 is already used by segment acme\/lan/,
      'CK_ERR_REGISTRY',
    ],
    [['segment', 'add', '--tenant', 'acme', '--name', 'dmz', '--vni', '16777216'], /vni/, 'CK_ERR_REGISTRY'],
    [['segment', 'add', '--tenant', 'acme', '--name', 'dmz', '--vni', '7', '--vtep', 'not-an-ip'], /not an IP address/, 'CK_ERR_REGISTRY'],
    [['segment', 'add', '--tenant', 'nobody', '--name', 'x', '--vni', '7'], /unknown tenant "nobody"/, 'CK_ERR_REGISTRY'],
    [['segment', 'remove', '--tenant', 'acme', '--name', 'lan'], /still used by claimed units \(CK0001\)/, 'CK_ERR_REGISTRY'],
    [['tenant', 'add', 'Acme Corp'], /tenant names are lowercase/, 'CK_ERR_REGISTRY'],
    [['tenant', 'remove', 'acme'], /still has claimed units/, 'CK_ERR_REGISTRY'],
    [['unit', 'allow', '--serial', 'CK0001'], /already in the registry \(claimed\)/, 'CK_ERR_REGISTRY'],
    [['segment', 'add', '--tenant', 'acme', '--name', 'dmz', '--vni', 'ten'], /--vni must be a whole number/, 'CK_ERR_USAGE'],
  ];
  for (const [args, msg, code] of cases) {
    const r = await connector([...args, ...R]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, msg, args.join(' '));
    if (code === 'CK_ERR_USAGE') assert.equal(r.code, 2, args.join(' '));
    else assert.match(r.stderr, new RegExp(code), args.join(' '));
  }
  assert.match(await ok(['segment', 'list', '--json', ...R]), /"vni": 100/);

  await ok(['unit', 'revoke', '--serial', 'CK0001', ...R]);
  await ok(['segment', 'add', '--tenant', 'acme', '--name', 'dmz', '--vni', '200', '--multi-site', ...R]);
  await ok(['segment', 'remove', '--tenant', 'acme', '--name', 'dmz', ...R]);
}

test('registry CLI on the JSON file: tenants, segments, units, refusals', async (t) => {
  const d = tempDir(t);
  const file = d.path('registry.json');
  await walkThrough(file);
  const reg = parseRegistry(JSON.parse(readFileSync(file, 'utf8')));
  assert.equal(reg.tenants['acme']?.segments['lan']?.vtepPathMtu, 1600);
  assert.equal(admitDevice(reg, 'CK0001').ok, false, 'revoked');
});

test('registry CLI on PostgreSQL: the same commands, two writers at once lose nothing, migrate', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  await walkThrough(url);

  // Two operators' CLIs at once, several times over: every unit they add is there.
  const writes: Promise<string>[] = [];
  for (let i = 0; i < 6; i++) writes.push(ok(['unit', 'allow', '--serial', `P${i}`, '--registry', url]));
  await Promise.all(writes);
  const s = await PostgresRegistryStore.open(url);
  t.after(() => s.close());
  for (let i = 0; i < 6; i++) assert.equal(s.current().devices[`P${i}`]?.state, 'allowed', `P${i}`);

  // migrate: into an empty database, again (no change), refused over another registry without --force.
  const d = tempDir(t);
  const file = d.path('registry.json');
  await walkThrough(file);
  const fresh = pgs.newDatabase();
  assert.match(await ok(['registry', 'migrate', '--from', file, '--to', fresh]), /1 tenants, 1 units/);
  assert.match(await ok(['registry', 'migrate', '--from', file, '--to', fresh]), /1 tenants, 1 units/);
  const refused = await connector(['registry', 'migrate', '--from', file, '--to', url]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /already holds a registry .*--force.*CK_ERR_REGISTRY_DB/);
  await ok(['registry', 'migrate', '--from', file, '--to', url, '--force']);
  await s.reload();
  assert.deepEqual(Object.keys(s.current().devices), ['CK0001'], '--force replaced the content');
  const m = await PostgresRegistryStore.open(fresh);
  t.after(() => m.close());
  const fromFile = parseRegistry(JSON.parse(readFileSync(file, 'utf8')));
  assert.deepEqual(m.current().devices, fromFile.devices);
  assert.deepEqual(m.current().tenants, fromFile.tenants);
});
