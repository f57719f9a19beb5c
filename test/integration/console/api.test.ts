// SPDX-License-Identifier: UNLICENSED
// The console's API against bad input and guessing, over real TLS: every refusal is a 4xx with a JSON
// error, the server stays up, and a headend that does not answer is reported, not waited for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { writeFileSync, readFileSync } from 'node:fs';
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

test('console API: bad requests get clear 4xx answers, logins are rate-limited, the server stays up', async (t) => {
  const d = tempDir(t, 'ck-console-api-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  await addOperator({ file: d.path('operators.json'), name: 'alice', role: 'admin', tenants: [], password: 'a long enough password' });
  writeFileSync(
    d.path('console.json'),
    JSON.stringify({
      port: 0,
      tlsCertFile: pki.server.certFile,
      tlsKeyFile: pki.server.keyFile,
      registryFile: 'registry.json',
      operatorsFile: 'operators.json',
      headends: ['http://127.0.0.1:9'],
      operatorLogFile: 'ops.jsonl',
      pollMs: 200,
    }),
  );
  const con = await startConsole(parseConsoleConfigText(readFileSync(d.path('console.json'), 'utf8'), 'console.json', d.dir), silentLogger);
  t.after(() => con.close());
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
