// SPDX-License-Identifier: UNLICENSED
// The resumable downloader against real HTTPS servers: resume with Range, restart when a server ignores
// Range, follow https redirects (refuse http ones), never grow past the manifest size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hasCode } from '../../../../../src/shared/errors.js';
import { createLogger } from '../../../../../src/shared/log.js';
import { startArtifactServer } from '../../../../../src/ota/adapters/artifact-server.js';
import { downloadWithResume } from '../../../../../src/agent/adapters/ota/downloader.js';
import { createTestPki } from '../../../../helpers/pki.js';
import { tempDir } from '../../../../helpers/tmp.js';

test('resume, restart, redirects and the size cap', async (t) => {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true });
  const dir = tempDir(t, 'ck-ota-dl-').dir;
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
  writeFileSync(join(dir, 'a.bin'), body);
  const log: string[] = [];
  const art = await startArtifactServer({
    dir,
    cert: pki.server.cert,
    key: pki.server.key,
    host: '127.0.0.1',
    port: 0,
    log: createLogger({ write: (l) => log.push(l) }),
  });
  t.after(() => art.close());
  // A server that ignores Range and redirects /r/* to the artifact server (and /insecure to http).
  const other = createServer({ cert: pki.server.cert, key: pki.server.key }, (req, res) => {
    if (req.url === '/norange') return void res.writeHead(200, { 'content-length': body.length }).end(body);
    if (req.url === '/insecure') return void res.writeHead(302, { location: 'http://127.0.0.1:1/a.bin' }).end();
    if (req.url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    res.writeHead(302, { location: `${art.url}/a.bin` }).end();
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.after(() => other.close());
  const otherUrl = `https://127.0.0.1:${(other.address() as AddressInfo).port}`;
  const file = join(dir, 'out.part');

  writeFileSync(file, body.subarray(0, 30_000));
  const r1 = await downloadWithResume({ url: `${art.url}/a.bin`, file, size: body.length, ca: pki.dcCa.pem });
  assert.deepEqual(r1, { resumedFrom: 30_000, bytes: body.length });
  assert.ok(readFileSync(file).equals(body));
  assert.match(log.at(-1) ?? '', /"range":"bytes=30000-","status":206,"bytes":70000/);

  writeFileSync(file, body.subarray(0, 30_000));
  const r2 = await downloadWithResume({ url: `${otherUrl}/norange`, file, size: body.length, ca: pki.dcCa.pem });
  assert.equal(r2.resumedFrom, 0, 'a 200 answer restarts the file');
  assert.ok(readFileSync(file).equals(body));

  rmSync(file);
  await downloadWithResume({ url: `${otherUrl}/r/a.bin`, file, size: body.length, ca: pki.dcCa.pem });
  assert.ok(readFileSync(file).equals(body), 'followed the redirect');
  await assert.rejects(
    downloadWithResume({ url: `${otherUrl}/insecure`, file: join(dir, 'x'), size: 10, ca: pki.dcCa.pem }),
    (e) => hasCode(e, 'CK_ERR_OTA_DOWNLOAD') && /non-https/.test(e.message),
  );
  await assert.rejects(downloadWithResume({ url: `${otherUrl}/loop`, file: join(dir, 'y'), size: 10, ca: pki.dcCa.pem }), /redirects/);

  rmSync(file);
  await assert.rejects(downloadWithResume({ url: `${art.url}/a.bin`, file, size: 50_000, ca: pki.dcCa.pem }), /more than the 50000 bytes/);
  await assert.rejects(downloadWithResume({ url: `${art.url}/missing.bin`, file: join(dir, 'z'), size: 10, ca: pki.dcCa.pem }), /HTTP 404/);
});
