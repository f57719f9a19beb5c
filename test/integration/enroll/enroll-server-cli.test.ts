// SPDX-License-Identifier: UNLICENSED
// `connector enroll-server --config FILE` as an operator runs it: starts, serves /cacerts, stops on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { estCaCerts } from '../../../src/agent/adapters/identity/est-client.js';
import { createEstFixture, EST_CONFIG_DOC } from './est-fixture.js';

test('enroll-server CLI serves cacerts from its config and exits 0 on SIGTERM', async (t) => {
  const fx = await createEstFixture();
  t.after(() => fx.close());
  const cfgFile = join(fx.dir, 'est.json');
  writeFileSync(cfgFile, JSON.stringify(EST_CONFIG_DOC));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(process.cwd(), 'src/cli/connector.ts'), 'enroll-server', '--config', cfgFile],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => child.kill('SIGKILL'));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening on (\S+)/.exec(buf);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`enroll-server exited ${code}`)));
  });
  const r = await estCaCerts({ baseUrl: url, tls: { ca: fx.anchorPem }, nowMs: Date.now() });
  assert.equal(r.kind, 'issued');
  assert.equal(r.kind === 'issued' ? r.certsDer.length : 0, 1);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
