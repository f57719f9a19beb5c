// SPDX-License-Identifier: UNLICENSED
// The console with a fleet's weight: 2,000 units over 20 tenants in the registry, 2,000 live sessions
// reported by a stand-in headend endpoint (a plain HTTP server serving a /sessions document shaped like a
// real headend's: the headend itself is benchmarked in bench/headend-load). Measures the first page load
// (the page, its script and style, /api/me, /api/tenants and /api/units, as the browser fetches them) and
// the API's latency under sequential calls. JSON on stdout, a table on stderr.
import { createServer } from 'node:http';
import { request } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { addOperator, startConsole } from '../../src/console/main.js';
import { parseConsoleConfigText } from '../../src/console/core/config.js';
import { silentLogger } from '../../src/shared/log.js';
import { createTestPki } from '../../test/helpers/pki.js';

const UNITS = Number(process.env['UNITS'] ?? 2_000);
const CALLS = 300;
const dir = mkdtempSync(join(tmpdir(), 'ck-bench-console-'));
const pki = await createTestPki(dir);
const tenants: Record<string, unknown> = {};
for (let t = 0; t < 20; t++) tenants[`tenant-${t}`] = { segments: { lan: { vni: 1000 + t, vteps: ['192.0.2.1'] } } };
const devices: Record<string, unknown> = {};
const sessions: unknown[] = [];
for (let i = 0; i < UNITS; i++) {
  const serial = `CK-${String(i).padStart(6, '0')}`;
  const tenant = `tenant-${i % 20}`;
  devices[serial] = { state: 'claimed', tenant, updatedAt: '2026-12-01T00:00:00Z' };
  sessions.push({
    serial,
    tenant,
    segment: 'lan',
    vni: 1000 + (i % 20),
    state: 'up',
    remote: '203.0.113.1:40000',
    site: `site-${i}`,
    agentVersion: '1.0.0',
    startedAtMs: Date.now(),
    bytesIn: i,
    bytesOut: i,
  });
}
writeFileSync(join(dir, 'registry.json'), JSON.stringify({ version: 1, tenants, devices, denylist: [] }));
const sessionsDoc = JSON.stringify({ sessions });
const standIn = createServer((_req, res) => res.end(sessionsDoc));
await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', () => r()));
await addOperator({ file: join(dir, 'operators.json'), name: 'bench', role: 'admin', tenants: [], password: 'benchmark password' });
writeFileSync(
  join(dir, 'console.json'),
  JSON.stringify({
    port: 0,
    tlsCertFile: pki.server.certFile,
    tlsKeyFile: pki.server.keyFile,
    registryFile: 'registry.json',
    operatorsFile: 'operators.json',
    headends: [`http://127.0.0.1:${(standIn.address() as AddressInfo).port}`],
    operatorLogFile: 'ops.jsonl',
  }),
);
const con = await startConsole(parseConsoleConfigText(readFileSync(join(dir, 'console.json'), 'utf8'), 'console.json', dir), silentLogger);
let cookie = '';
const get = (path: string, method = 'GET', body?: string): Promise<{ ms: number; bytes: number; status: number }> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: con.address.port,
        path,
        method,
        ca: pki.dcCa.pem,
        headers: { cookie, ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => {
          const set = res.headers['set-cookie']?.[0];
          if (set) cookie = set.split(';')[0] ?? '';
          resolve({ ms: performance.now() - t0, bytes, status: res.statusCode ?? 0 });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
await get('/api/login', 'POST', JSON.stringify({ name: 'bench', password: 'benchmark password' }));
const t0 = performance.now();
await Promise.all([get('/'), get('/app.js'), get('/app.css')]);
// The modules app.js imports: the browser asks for them once it has read app.js (a second round trip).
const modules = [
  ...readFileSync(new URL('../../src/console/web/app.js', import.meta.url), 'utf8').matchAll(/from '\.\/([a-z0-9-]+\.js)'/g),
].map((m) => `/${m[1]}`);
await Promise.all(modules.map((m) => get(m)));
await get('/api/me');
const [tenantsR, unitsR] = await Promise.all([get('/api/tenants'), get('/api/units')]);
const firstLoadMs = performance.now() - t0;
const lat: number[] = [];
for (let i = 0; i < CALLS; i++) lat.push((await get('/api/units')).ms);
lat.sort((a, b) => a - b);
const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
const result = {
  units: UNITS,
  firstLoadMs: Math.round(firstLoadMs),
  unitsBytes: unitsR.bytes,
  tenantsStatus: tenantsR.status,
  apiUnitsMs: { p50: +q(0.5).toFixed(2), p99: +q(0.99).toFixed(2), max: +q(1).toFixed(2) },
  targets: { firstLoadMs: 1_000, apiP99Ms: 50 },
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
process.stderr.write(
  `| metric (${UNITS} units) | value | target |\n|---|---|---|\n| first page load | ${result.firstLoadMs} ms | <= 1000 ms |\n| GET /api/units p50 / p99 / max | ${result.apiUnitsMs.p50} / ${result.apiUnitsMs.p99} / ${result.apiUnitsMs.max} ms | p99 <= 50 ms |\n| /api/units body | ${result.unitsBytes} bytes | |\n`,
);
await con.close();
standIn.close();
rmSync(dir, { recursive: true, force: true });
