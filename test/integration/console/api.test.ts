// SPDX-License-Identifier: UNLICENSED
// The console's API against bad input and guessing, over real TLS: every refusal is a 4xx with a JSON
// error, the server stays up, and a headend that does not answer is reported, not waited for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { addOperator, startConsole } from '../../../src/console/main.js';
import { parseConsoleConfigText } from '../../../src/console/core/config.js';
import { silentLogger } from '../../../src/shared/log.js';
import { registryDoc, writeJson } from '../headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(
  port: number,
  ca: string,
  method: string,
  path: string,
  o: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, method, path, ca, headers: o.headers ?? {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

type Session = (method: string, path: string, body?: unknown) => Promise<Reply>;

/** Logs `name` in; the returned function calls the API with its cookie and CSRF token. */
async function sessionOf(port: number, ca: string, name: string, password: string): Promise<Session> {
  const r = await call(port, ca, 'POST', '/api/login', {
    body: JSON.stringify({ name, password }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, r.body);
  const cookie = String((r.headers['set-cookie'] as string[])[0]).split(';')[0] ?? '';
  const csrf = String(JSON.parse(r.body).csrf);
  return (method, path, body) =>
    call(port, ca, method, path, {
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
    });
}

/** A console on a free port over the test PKI, with the files of `d` and `extra` config keys; closed after the test. */
async function consoleWith(
  t: { after(fn: () => unknown): void },
  d: { dir: string; path(name: string): string },
  pki: Awaited<ReturnType<typeof createTestPki>>,
  extra: Record<string, unknown>,
): Promise<Awaited<ReturnType<typeof startConsole>>> {
  const doc = {
    port: 0,
    tlsCertFile: pki.server.certFile,
    tlsKeyFile: pki.server.keyFile,
    registryFile: 'registry.json',
    operatorsFile: 'operators.json',
    operatorLogFile: 'ops.jsonl',
    pollMs: 200,
    ...extra,
  };
  writeFileSync(d.path('console.json'), JSON.stringify(doc));
  const con = await startConsole(parseConsoleConfigText(readFileSync(d.path('console.json'), 'utf8'), 'console.json', d.dir), silentLogger);
  t.after(() => con.close());
  return con;
}

test('console API: bad requests get clear 4xx answers, logins are rate-limited, the server stays up', async (t) => {
  const d = tempDir(t, 'ck-console-api-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  await addOperator({ file: d.path('operators.json'), name: 'alice', role: 'admin', tenants: [], password: 'a long enough password' });
  const con = await consoleWith(t, d, pki, { headends: ['http://127.0.0.1:9'] });
  const port = con.address.port;
  const ca = pki.dcCa.pem;
  const json = { 'content-type': 'application/json' };

  assert.equal((await call(port, ca, 'GET', '/api/units')).status, 401, 'no session');
  assert.equal((await call(port, ca, 'POST', '/api/login', { body: '{"name":', headers: json })).status, 400, 'broken JSON');
  assert.equal((await call(port, ca, 'POST', '/api/login', { body: 'name=a', headers: { 'content-type': 'text/plain' } })).status, 415);
  const big = await call(port, ca, 'POST', '/api/login', { body: Buffer.alloc(100_000, 0x20), headers: json });
  assert.equal(big.status, 413);
  assert.match(JSON.parse(big.body).error as string, /over 65536 bytes/);
  assert.equal((await call(port, ca, 'GET', '/../../etc/passwd')).status, 404);
  assert.equal((await call(port, ca, 'GET', '/api/nothing')).status, 401, 'unknown API paths still need a session');
  const page = await call(port, ca, 'GET', '/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);

  // Five wrong passwords lock the name out with a Retry-After; the right one is refused too until then.
  for (let i = 0; i < 5; i++) {
    const r = await call(port, ca, 'POST', '/api/login', {
      body: JSON.stringify({ name: 'alice', password: `wrong ${i}` }),
      headers: json,
    });
    assert.equal(r.status, 401);
  }
  const locked = await call(port, ca, 'POST', '/api/login', {
    body: JSON.stringify({ name: 'alice', password: 'a long enough password' }),
    headers: json,
  });
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers['retry-after']) >= 1);

  // The API's description needs no session.
  assert.deepEqual(JSON.parse((await call(port, ca, 'GET', '/api/openapi.json')).body).openapi, '3.0.3');
});

test('console API: an admin creates tenants and segments (the registry checks every value, the operator log names who); others get 403', async (t) => {
  const d = tempDir(t, 'ck-console-tenants-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const pw = 'a long enough password';
  await addOperator({ file: d.path('operators.json'), name: 'alice', role: 'admin', tenants: [], password: pw });
  await addOperator({ file: d.path('operators.json'), name: 'msp', role: 'msp', tenants: ['acme'], password: pw });
  await addOperator({ file: d.path('operators.json'), name: 'ro', role: 'read-only', tenants: [], password: pw });
  const con = await consoleWith(t, d, pki, {});
  const port = con.address.port;
  const ca = pki.dcCa.pem;
  const session = (name: string) => sessionOf(port, ca, name, pw);
  const alice = await session('alice');
  const error = (r: Reply): string => String(JSON.parse(r.body).error);

  assert.equal((await alice('POST', '/api/tenants', { name: 'globex' })).status, 200);
  const seg = await alice('POST', '/api/tenants/globex/segments', { name: 'lan', vni: 200, vteps: ['192.0.2.10'], multiSite: true });
  assert.equal(seg.status, 200, seg.body);
  const globex = (
    JSON.parse(seg.body).tenants as { name: string; segments: { name: string; vni: number; vteps: string[]; multiSite: boolean }[] }[]
  ).find((x) => x.name === 'globex');
  assert.deepEqual(globex?.segments, [{ name: 'lan', vni: 200, vteps: ['192.0.2.10'], multiSite: true }]);
  const reg = JSON.parse(readFileSync(d.path('registry.json'), 'utf8'));
  assert.equal(reg.tenants.globex.segments.lan.vni, 200, 'written to the registry the headends read');

  // Every bad value answered with a 400 that names it; nothing written.
  const bad = [
    [alice('POST', '/api/tenants', { name: 'globex' }), /already exists/],
    [alice('POST', '/api/tenants', {}), /give "name"/],
    [
      alice('POST', '/api/tenants/globex/segments', { name: 'wan', vni: 100 }),
      /VNI 100 is already used by segment acme\/default|VNI 100 is already used/,
    ],
    [alice('POST', '/api/tenants/globex/segments', { name: 'wan', vni: 'x' }), /"vni"/],
    [alice('POST', '/api/tenants/globex/segments', { name: 'wan', vni: 99_999_999 }), /vni|VNI/],
    [alice('POST', '/api/tenants/globex/segments', { name: 'wan', vni: 300, vteps: ['not-an-ip'] }), /not-an-ip|vtep/i],
    [alice('POST', '/api/tenants/globex/segments', { name: 'lan', vni: 201 }), /already exists/],
    [alice('POST', '/api/tenants/nobody/segments', { name: 'lan', vni: 400 }), /unknown tenant "nobody"/],
  ] as const;
  for (const [p, re] of bad) {
    const r = await p;
    assert.equal(r.status, 400, r.body);
    assert.match(error(r), re);
  }
  const changed = await alice('POST', '/api/tenants/globex/segments', { name: 'lan', vni: 201, replace: true });
  assert.equal(changed.status, 200, 'replace changes it, keeping the options not given');
  assert.deepEqual(JSON.parse(readFileSync(d.path('registry.json'), 'utf8')).tenants.globex.segments.lan.vteps, ['192.0.2.10']);

  for (const name of ['msp', 'ro']) {
    const other = await session(name);
    assert.equal((await other('POST', '/api/tenants', { name: `t-${name}` })).status, 403, name);
    assert.equal((await other('POST', '/api/tenants/acme/segments', { name: 'x', vni: 900 })).status, 403, name);
  }
  const noDrills = await alice('GET', '/api/drills');
  assert.equal(noDrills.status, 404);
  assert.match(error(noDrills), /drills are not configured \(set drillApi/);
  const log = readFileSync(d.path('ops.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { operator: string; action: string; target: string });
  assert.deepEqual(
    log.map((r) => [r.operator, r.action, r.target]),
    [
      ['alice', 'tenant-add', 'globex'],
      ['alice', 'segment-add', 'globex/lan'],
      ['alice', 'segment-change', 'globex/lan'],
    ],
  );
});

test('console API: an operator logs in with a client certificate of the console client CA (Node and curl); other certificates and none are refused with why', async (t) => {
  const d = tempDir(t, 'ck-console-cert-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const bob = await pki.client('operator-bob');
  const stranger = await pki.client('operator-stranger');
  await addOperator({ file: d.path('operators.json'), name: 'bob', role: 'read-only', tenants: [], password: '', certFile: bob.certFile });
  await addOperator({ file: d.path('operators.json'), name: 'carol', role: 'admin', tenants: [], password: 'a long enough password' });
  await assert.rejects(
    addOperator({ file: d.path('operators.json'), name: 'dave', role: 'admin', tenants: [], password: '' }),
    /at least 12 characters/,
    'no password and no certificate is refused',
  );
  const con = await consoleWith(t, d, pki, { clientCaFile: pki.deviceCa.file });
  const port = con.address.port;
  const ca = pki.dcCa.pem;
  const loginWith = (id?: { cert: string; key: string }): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port,
          method: 'POST',
          path: '/api/login-cert',
          ca,
          ...(id ? { cert: id.cert, key: id.key } : {}),
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });

  const ok = await loginWith(bob);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).name, 'bob');
  const cookie = String((ok.headers['set-cookie'] as string[])[0]).split(';')[0] ?? '';
  const me = await call(port, ca, 'GET', '/api/me', { headers: { cookie } });
  assert.equal(JSON.parse(me.body).role, 'read-only', 'the session works like a password one');

  const none = await loginWith();
  assert.equal(none.status, 401);
  assert.match(JSON.parse(none.body).error as string, /no client certificate/);
  const unknown = await loginWith(stranger);
  assert.equal(unknown.status, 401);
  assert.match(JSON.parse(unknown.body).error as string, /no operator has this certificate.*operator add --cert/);
  const otherCa = await loginWith(pki.server);
  assert.equal(otherCa.status, 401);
  assert.match(JSON.parse(otherCa.body).error as string, /not issued by the console's client CA/);

  // A certificate-only operator has no password to guess; a password operator is unaffected by the CA.
  const json = { 'content-type': 'application/json' };
  assert.equal(
    (await call(port, ca, 'POST', '/api/login', { body: JSON.stringify({ name: 'bob', password: 'anything at all' }), headers: json }))
      .status,
    401,
  );
  assert.equal(
    (
      await call(port, ca, 'POST', '/api/login', {
        body: JSON.stringify({ name: 'carol', password: 'a long enough password' }),
        headers: json,
      })
    ).status,
    200,
  );

  // curl, as a script would log in.
  // Not spawnSync: the console answers from this same process.
  const curl = await promisify(execFile)(
    'curl',
    [
      '-sS',
      '-X',
      'POST',
      '--cacert',
      pki.dcCa.file,
      '--cert',
      bob.certFile,
      '--key',
      bob.keyFile,
      '-d',
      '{}',
      `https://localhost:${port}/api/login-cert`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(JSON.parse(curl.stdout).name, 'bob');
});

test('console rollouts: state files are shown read-only; steering needs the controller, and a silent one is a 502', async (t) => {
  const d = tempDir(t, 'ck-console-ro-', true);
  const pki = await createTestPki(d.dir);
  const pw = 'a long enough password';
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  await addOperator({ file: d.path('operators.json'), name: 'alice', role: 'admin', tenants: [], password: pw });
  await addOperator({ file: d.path('operators.json'), name: 'ro', role: 'read-only', tenants: [], password: pw });
  mkdirSync(d.path('rollouts'));
  const at = '2026-12-05T00:00:00.000Z';
  writeFileSync(
    d.path('rollouts/r1.json'),
    JSON.stringify({
      v: 1,
      rolloutId: 'r1',
      release: { version: '1.1.0', manifestSha256: 'a'.repeat(64) },
      createdAt: at,
      failThreshold: 1,
      maxParallel: 10,
      status: 'active',
      devices: { 'A-1': { inCohort: true, state: 'downloading', progress: { bytes: 50, total: 200 }, updatedAt: at } },
    }),
  );
  writeFileSync(d.path('rollouts/broken.json'), '{"v": 1');
  const files = await consoleWith(t, d, pki, { rolloutDir: 'rollouts' });
  const alice = await sessionOf(files.address.port, pki.dcCa.pem, 'alice', pw);
  const list = JSON.parse((await alice('GET', '/api/rollouts')).body) as {
    rollouts: { id: string; units: { percent: number }[] }[];
    problems: string[];
  };
  assert.deepEqual(
    list.rollouts.map((r) => [r.id, r.units[0]?.percent]),
    [['r1', 25]],
  );
  assert.match(list.problems.join(';'), /broken\.json/);
  const start = await alice('POST', '/api/rollouts', { release: 'x', cohort: '10%', failThreshold: 1 });
  assert.equal(start.status, 404);
  assert.match(start.body, /set rolloutApi in the console config/);
  const ro = await sessionOf(files.address.port, pki.dcCa.pem, 'ro', pw);
  assert.equal((await ro('POST', '/api/rollouts/r1/pause', {})).status, 403, 'read-only cannot steer');

  const dead = await consoleWith(t, d, pki, { rolloutApi: 'http://127.0.0.1:9' });
  const alice2 = await sessionOf(dead.address.port, pki.dcCa.pem, 'alice', pw);
  const silent = await alice2('GET', '/api/rollouts');
  assert.equal(silent.status, 502);
  assert.match(silent.body, /the rollout service at http:\/\/127\.0\.0\.1:9 did not answer/);
  assert.equal((await alice2('GET', '/api/units')).status, 200, 'the console stays up');
});
