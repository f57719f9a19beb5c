// SPDX-License-Identifier: UNLICENSED
// `openssl s_client` as the peer of a headend process: a correct device handshakes (TLS 1.3, ALPN
// connector-l2/1); TLS 1.2, no client certificate, a certificate from another CA and an expired one are
// refused at the handshake; a denylisted serial is refused after it and gets an audit line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  headendConfigDoc,
  registryDoc,
  spawnHeadend,
  writeJson,
  type HeadendProcess,
} from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';

interface SClient {
  code: number;
  out: string;
}

/** Runs s_client, keeps stdin open briefly (TLS 1.3 client-cert refusals arrive after the client's Finished). */
function sClient(port: number, args: string[]): Promise<SClient> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    setTimeout(() => child.stdin.end(), 1_500);
    const killer = setTimeout(() => child.kill('SIGKILL'), 8_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code: code ?? 128, out });
    });
  });
}

test('openssl s_client peers: only a valid device certificate over TLS 1.3 is admitted', async (t) => {
  const d = tempDir(t, 'ck-ossl-', true);
  const pki = await createTestPki(d.dir);
  const good = await pki.client('CN-0001');
  const foreign = await pki.client('CN-0001', { foreign: true });
  const expired = await pki.client('CN-0001', { expired: true });
  const denied = await pki.client('CN-0666');
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'CN-0001': 'acme', 'CN-0666': 'acme' }, ['CN-0666']));
  writeJson(d.path('headend.json'), headendConfigDoc(d, pki, {}));
  const h: HeadendProcess = await spawnHeadend(d.path('headend.json'));
  t.after(async () => {
    await h.kill('SIGKILL');
    d.remove();
  });
  const base = ['-CAfile', pki.dcCa.file, '-alpn', 'connector-l2/1'];
  const withCert = (id: { certFile: string; keyFile: string }) => [...base, '-cert', id.certFile, '-key', id.keyFile];

  const ok = await sClient(h.tunnelPort, [...withCert(good), '-tls1_3']);
  assert.match(ok.out, /Protocol\s*: TLSv1\.3/);
  assert.match(ok.out, /ALPN protocol: connector-l2\/1/);
  assert.match(ok.out, /Verify return code: 0 \(ok\)/);
  await h.waitForLine((l) => l['msg'] === 'session admitted' && l['serial'] === 'CN-0001');

  const cases: [string, string[], string][] = [
    ['TLS 1.2', [...withCert(good), '-tls1_2'], 'tls-version'],
    ['no client certificate', [...base, '-tls1_3'], 'no-client-cert'],
    ['certificate from another CA', [...withCert(foreign), '-tls1_3'], 'cert-untrusted'],
    ['expired certificate', [...withCert(expired), '-tls1_3'], 'cert-expired'],
  ];
  for (const [name, args, reason] of cases) {
    const before = h.lines.filter((l) => l['msg'] === 'session admitted').length;
    const r = await sClient(h.tunnelPort, args);
    const refusal = await h.waitForLine((l) => l['msg'] === 'refused: TLS handshake' && !('seen' in l) && ((l['seen'] = true), true));
    t.diagnostic(`${name}: refused (${String(refusal['reason'])}, ${String(refusal['verify'] ?? refusal['error'])})`);
    assert.equal(refusal['reason'], reason, `${name}: ${String(refusal['error'])}\n${r.out}`);
    assert.equal(h.lines.filter((l) => l['msg'] === 'session admitted').length, before, `${name} must not be admitted`);
    assert.doesNotMatch(r.out, /Verify return code: 0 \(ok\)[\s\S]*Protocol\s*: TLSv1\.2/);
  }

  await sClient(h.tunnelPort, [...withCert(denied), '-tls1_3']);
  const refused = await h.waitForLine((l) => l['msg'] === 'refused' && l['serial'] === 'CN-0666');
  assert.equal(refused['reason'], 'denylisted');
  const audit = readFileSync(d.path('audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const line = audit.find((l) => l['event'] === 'refused' && l['serial'] === 'CN-0666');
  assert.equal(line?.['reason'], 'denylisted');
  assert.match(String(line?.['fingerprint']), /^[0-9a-f]{64}$/);
});
