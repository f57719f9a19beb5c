// SPDX-License-Identifier: UNLICENSED
// Attacks on the datacentre's HTTP services, on loopback, against the real servers: the OTA artifact
// server and the EST server. Each attack is bounded in count and time; after each, a legitimate client is
// served within 2 s and the process is still up. Figures are printed as `#` lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { startArtifactServer } from '../../src/ota/adapters/artifact-server.js';
import { renderGuardMetrics } from '../../src/shared/net/guard-metrics.js';
import { silentLogger } from '../../src/shared/log.js';
import { EST_PATH_PREFIX } from '../../src/shared/est/protocol.js';
import { createTestPki } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';
import { createEstFixture } from '../integration/enroll/est-fixture.js';

function get(
  port: number,
  ca: string,
  path: string,
  o: { method?: string; body?: Buffer; headers?: Record<string, string>; cert?: string; key?: string } = {},
): Promise<{ status: number; ms: number; bytes: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tls = o.cert && o.key ? { cert: o.cert, key: o.key } : {};
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        path,
        ca,
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        timeout: 5_000,
        ...tls,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0, bytes }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A raw TLS connection that sends `text` and collects what comes back. */
function rawTls(port: number, ca: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s: TLSSocket = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port, ca }, () => s.write(text));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    setTimeout(() => s.destroy(), 3_000).unref();
  });
}

const mb = (n: number): string => (n / 1024 / 1024).toFixed(0);

test('OTA artifact server: malformed requests, never-reading clients, links out of the directory, one source flooding', async (t) => {
  const d = tempDir(t, 'ck-abuse-ota-', true);
  const pki = await createTestPki(d.dir);
  const dir = d.path('artifacts');
  mkdirSync(dir);
  writeFileSync(join(dir, 'fw.bin'), Buffer.alloc(32 * 1024 * 1024, 0x5a));
  writeFileSync(d.path('secret.txt'), 'not for devices');
  symlinkSync(d.path('secret.txt'), join(dir, 'escape.txt'));
  const srv = await startArtifactServer({
    dir,
    cert: readFileSync(pki.server.certFile),
    key: readFileSync(pki.server.keyFile),
    host: '127.0.0.1',
    port: 0,
    log: silentLogger,
  });
  t.after(() => srv.close());
  const ca = pki.dcCa.pem;

  // Malformed request targets: each gets a 400 (or a close), and the server goes on.
  for (const target of ['//[', 'http://[::1', '/%', '/..%2f..%2fsecret.txt', `/${'a'.repeat(70_000)}`]) {
    const reply = await rawTls(srv.port, ca, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.ok(reply === '' || /^HTTP\/1\.1 (400|404|431)/.test(reply), `a clear refusal for ${target.slice(0, 20)}: ${reply.slice(0, 40)}`);
  }
  assert.equal((await get(srv.port, ca, '/fw.bin', { method: 'HEAD' })).status, 200, 'still serving after the malformed requests');

  // A symbolic link inside the directory that points out of it serves nothing.
  assert.equal((await get(srv.port, ca, '/escape.txt')).status, 404);

  // Clients that ask for 32 MB and never read: memory stays bounded (back-pressure), others are served.
  global.gc?.();
  const before = process.memoryUsage().rss;
  const stalled: TLSSocket[] = [];
  for (let i = 0; i < 20; i++) {
    const s = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port: srv.port, ca }, () =>
      s.write('GET /fw.bin HTTP/1.1\r\nHost: x\r\n\r\n'),
    );
    s.pause();
    s.on('error', () => {});
    stalled.push(s);
  }
  t.after(() => stalled.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 2_000));
  const grown = process.memoryUsage().rss - before;
  const legit = await get(srv.port, ca, '/fw.bin', { headers: { range: 'bytes=0-1048575' } });
  t.diagnostic(`20 clients that never read a 32 MB file: RSS +${mb(grown)} MB; a legitimate 1 MB range meanwhile: ${legit.ms} ms`);
  assert.equal(legit.status, 206);
  assert.ok(legit.ms < 2_000);
  assert.ok(grown < 150 * 1024 * 1024, `RSS grew ${mb(grown)} MB for 20 stalled clients (unbounded buffering)`);
  stalled.forEach((s) => s.destroy());

  // One source opening far more connections than its share: the excess is closed at once; the service
  // answers another source within 2 s.
  const flood: Socket[] = [];
  let closedEarly = 0;
  for (let i = 0; i < 200; i++) {
    const s = netConnect({ host: '127.0.0.1', port: srv.port });
    s.on('error', () => {});
    s.on('close', () => closedEarly++);
    flood.push(s);
  }
  t.after(() => flood.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 500));
  const other = await new Promise<number>((resolve, reject) => {
    const t0 = Date.now();
    const req = request(
      { host: '127.0.0.1', localAddress: '127.0.0.2', servername: 'localhost', port: srv.port, path: '/fw.bin', method: 'HEAD', ca },
      (res) => {
        res.resume();
        res.on('end', () => resolve(Date.now() - t0));
      },
    );
    req.on('error', reject);
    req.end();
  });
  t.diagnostic(
    `200 connections from one address: ${closedEarly} closed at once by the per-source cap; another address served in ${other} ms`,
  );
  assert.ok(closedEarly >= 100, 'connections past the per-source cap are closed');
  const metrics = renderGuardMetrics([{ name: 'artifact-server', guard: srv.guard }]);
  const perSource = Number(/reason="per-source-cap"\} (\d+)/.exec(metrics)?.[1] ?? -1);
  assert.ok(perSource >= 100, `each refusal is counted for the metrics (per-source-cap ${perSource})`);
  assert.match(
    metrics,
    /connector_service_refusals_total\{service="artifact-server",reason="bad-request"\} [1-9]/,
    'the malformed requests too',
  );
  assert.ok(other < 2_000);
});

test('EST server: the 413 for a large body reaches the client; malformed requests get a 400; it keeps serving', async (t) => {
  const est = await createEstFixture();
  t.after(() => est.close());
  const ca = est.anchorPem;
  const id = await est.idevid('ABUSE-1');
  const big = await get(est.server.port, ca, `${EST_PATH_PREFIX}/simpleenroll`, {
    method: 'POST',
    body: Buffer.alloc(2 * 1024 * 1024, 0x41),
    headers: { 'content-type': 'application/pkcs10' },
    cert: id.chainPem,
    key: id.keyPem,
  }).catch((e: Error) => ({ status: -1, ms: 0, bytes: 0, error: e.message }));
  assert.equal(big.status, 413, 'the client reads the 413');
  const reply = await rawTls(est.server.port, ca, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n');
  assert.ok(reply === '' || /^HTTP\/1\.1 [45]\d\d/.test(reply), `a refusal: ${reply.slice(0, 40)}`);
  assert.equal((await get(est.server.port, ca, `${EST_PATH_PREFIX}/cacerts`)).status, 200, 'still serving');
});
