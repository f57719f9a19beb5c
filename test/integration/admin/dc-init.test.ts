// SPDX-License-Identifier: UNLICENSED
// `connector dc init` as an operator runs it: the files and their modes, what OpenSSL says about them
// (chain, SANs, EKUs, key type, CA constraints), the refusal to overwrite, and then the quickstart's first
// tunnel from nothing but its output: a registry made with the CLI, a real EST server and headend started
// from the generated files, a unit with a factory block that enrolls and opens its tunnel.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { silentLogger } from '../../../src/shared/log.js';
import { FACTORY_BLOCK_OFFSET, encodeFactoryBlock } from '../../../src/shared/factory-block/factory-block.js';
import { writeFactoryRegion } from '../../../src/shared/factory-block/block-io.js';
import { certFingerprint } from '../../../src/shared/pki/x509.js';
import { initFactoryCa, loadFactoryCa, factoryCaPaths } from '../../../src/factory/adapters/factory-ca.js';
import { issueIdevid } from '../../../src/factory/core/idevid.js';
import { parseEstServerConfig } from '../../../src/enroll/core/config.js';
import { startEnrollServer } from '../../../src/enroll/main.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { ensureIdentity, IdentityStatusTracker } from '../../../src/agent/adapters/identity/index.js';
import { rawTunnel } from '../headend/adapters/fixtures.js';
import { startPostgres } from '../../helpers/postgres.js';
import { skipOrFail } from '../../helpers/skip.js';
import { tempDir } from '../../helpers/tmp.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

function connector(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), ...args],
      { cwd: REPO, timeout: 60_000 },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await connector(args);
  assert.equal(r.code, 0, `connector ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const openssl = (args: string[], cwd: string): string =>
  execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const SANS = ['--headend-dns', 'headend.dc.example', '--headend-ip', '127.0.0.1', '--est-dns', 'est.dc.example', '--est-ip', '127.0.0.1'];

test('dc init: files, modes, and what openssl says about them; no overwrite without --force', async (t) => {
  if (!haveOpenssl()) return skipOrFail(t, 'openssl not installed');
  const d = tempDir(t);
  const pki = d.path('pki');
  await ok(['dc', 'init', pki, ...SANS, '--org', 'Example DR']);
  for (const f of ['dc-ca', 'device-ca', 'headend', 'est']) {
    const key = join(pki, f.endsWith('ca') ? `${f}.key.pem` : `${f}.key.pem`);
    assert.equal(statSync(key).mode & 0o777, 0o600, key);
    const cert = join(pki, f.endsWith('ca') ? `${f}.pem` : `${f}.cert.pem`);
    assert.equal(statSync(cert).mode & 0o777, 0o644, cert);
  }
  assert.match(
    openssl(['verify', '-CAfile', 'dc-ca.pem', 'headend.cert.pem', 'est.cert.pem'], pki),
    /headend\.cert\.pem: OK\nest\.cert\.pem: OK/,
  );
  // The device CA is another root: it must not vouch for the servers.
  assert.throws(() => openssl(['verify', '-CAfile', 'device-ca.pem', 'headend.cert.pem'], pki));
  const he = openssl(['x509', '-in', 'headend.cert.pem', '-noout', '-text'], pki);
  assert.match(he, /Subject Alternative Name: *\n *DNS:headend\.dc\.example, IP Address:127\.0\.0\.1/);
  assert.match(he, /Extended Key Usage: *\n *TLS Web Server Authentication\n/);
  assert.match(he, /CA:FALSE/);
  assert.match(he, /NIST CURVE: P-256/);
  assert.match(he, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(openssl(['x509', '-in', 'est.cert.pem', '-noout', '-text'], pki), /DNS:est\.dc\.example, IP Address:127\.0\.0\.1/);
  for (const ca of ['dc-ca.pem', 'device-ca.pem']) {
    const text = openssl(['x509', '-in', ca, '-noout', '-text'], pki);
    assert.match(text, /CA:TRUE, pathlen:0/, ca);
    assert.match(text, /Certificate Sign, CRL Sign/, ca);
    assert.match(text, /NIST CURVE: P-256/, ca);
  }
  assert.match(openssl(['pkey', '-in', 'headend.key.pem', '-noout', '-text'], pki), /NIST CURVE: P-256/);

  const anchor = readFileSync(join(pki, 'dc-ca.pem'), 'utf8');
  const again = await connector(['dc', 'init', pki, ...SANS]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already holds dc-ca\.pem.*--force.*CK_ERR_DC_PKI/);
  assert.equal(readFileSync(join(pki, 'dc-ca.pem'), 'utf8'), anchor, 'nothing replaced');
  const noName = await connector(['dc', 'init', d.path('other'), '--est-ip', '127.0.0.1']);
  assert.match(noName.stderr, /headend certificate needs at least one name/);
  const badIp = await connector(['dc', 'init', d.path('other'), ...SANS, '--est-ip', '300.1.1.1']);
  assert.match(badIp.stderr, /"300\.1\.1\.1" is not an IP address/);
  await ok(['dc', 'init', pki, ...SANS, '--force']);
  assert.notEqual(readFileSync(join(pki, 'dc-ca.pem'), 'utf8'), anchor, '--force replaced it');
});

/** The quickstart on one registry backend: `registry` is a file path relative to the work dir, or a URL. */
async function firstTunnel(t: TestContext, registry: (dir: string) => string): Promise<void> {
  const d = tempDir(t, 'ck-dc-', true);
  const reg = registry(d.dir);
  const pki = d.path('pki');
  await ok(['dc', 'init', pki, ...SANS]);
  const factoryDir = d.path('factory');
  await initFactoryCa({ dir: factoryDir, commonName: 'Example Factory CA', now: new Date(Date.now() - 86_400_000), validityYears: 20 });
  const factoryCa = await loadFactoryCa(factoryCaPaths(factoryDir));
  const serial = 'R3S-QS-0001';
  const idevid = await issueIdevid(factoryCa, serial, '1.0', new Date());

  // The registry, as the quickstart makes it.
  const R = ['--registry', reg];
  await ok(['tenant', 'add', 'acme', ...R]);
  await ok(['segment', 'add', '--tenant', 'acme', '--name', 'lan', '--vni', '1001', '--vtep', '127.0.0.2', ...R]);
  await ok(['unit', 'allow', '--serial', serial, '--fingerprint', certFingerprint(idevid.cert), ...R]);
  await ok(['unit', 'claim', '--serial', serial, '--tenant', 'acme', ...R]);

  const est = await startEnrollServer(
    parseEstServerConfig(
      {
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: 'pki/est.cert.pem',
        tlsKeyFile: 'pki/est.key.pem',
        factoryCaFiles: [factoryCaPaths(factoryDir).certFile],
        deviceCaCertFile: 'pki/device-ca.pem',
        deviceCaKeyFile: 'pki/device-ca.key.pem',
        registryFile: reg,
        issuanceLogFile: 'issued.jsonl',
      },
      d.dir,
    ),
    { log: silentLogger, now: () => new Date() },
  );
  const doc = {
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert: 'pki/headend.cert.pem', key: 'pki/headend.key.pem', deviceCa: 'pki/device-ca.pem' },
    registry: reg,
    auditLog: 'audit.jsonl',
    metrics: null,
    vxlan: { localAddress: '127.0.0.1', port: 0 },
  };
  const headend = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  t.after(async () => {
    await headend.close();
    await est.close();
    d.remove();
  });

  // The unit: a factory block with the DC CA as its anchor, as `connector factory provision` writes it.
  mkdirSync(d.path('unit'));
  const disk = d.path('unit/mmcblk0.img');
  writeFileSync(disk, '');
  truncateSync(disk, 32 * 1024 * 1024);
  writeFactoryRegion(
    disk,
    FACTORY_BLOCK_OFFSET,
    encodeFactoryBlock({
      serial,
      hwRev: '1.0',
      macs: [],
      idevidChainPem: idevid.chainPem,
      idevidKeyPem: idevid.keyPem,
      estUrl: est.url,
      dcAnchorPem: readFileSync(join(pki, 'dc-ca.pem'), 'utf8'),
      batch: 'b1',
      station: 'st1',
      createdAt: new Date(Date.now() - 86_400_000).toISOString(),
    }),
  );
  const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  const id = await ensureIdentity({
    identityDir: d.path('unit/etc-connector'),
    factoryBlockPath: disk,
    factoryBlockOffset: FACTORY_BLOCK_OFFSET,
    clock,
    log: silentLogger,
    status: new IdentityStatusTracker(clock.now),
    random: () => 0.5,
  });
  assert.equal(id.serial, serial);

  const tunnel = await rawTunnel(
    headend.tunnelAddress.port,
    { cn: serial, cert: id.certPem, key: id.keyPem, certFile: id.certFile, keyFile: id.keyFile },
    readFileSync(join(pki, 'dc-ca.pem'), 'utf8'),
  );
  t.after(() => tunnel.socket.destroy());
  const ack = await tunnel.hello();
  assert.equal(ack.type === 'hello-ack' && ack.vni, 1001);
}

test('dc init: a real EST server and headend run from its output; a unit enrolls and opens its tunnel', (t) =>
  firstTunnel(t, (dir) => join(dir, 'registry.json')));

test('dc init: the same first tunnel with the registry in PostgreSQL (CLI, EST server, headend)', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  await firstTunnel(t, () => url);
});
