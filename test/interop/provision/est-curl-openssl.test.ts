// SPDX-License-Identifier: UNLICENSED
// RFC 7030 interop: curl and openssl alone act as the EST client against our server. The CSR is made by
// `openssl req`, the client authenticates with an IDevID over TLS 1.3, and every response is read by
// openssl (pkcs7 -print_certs, x509, verify, asn1parse).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/shared/exec.js';
import { createEstFixture } from '../../integration/enroll/est-fixture.js';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate } from '../../../src/shared/pki/x509.js';

interface CurlResult {
  status: number;
  headers: Record<string, string>;
  bodyFile: string;
}

test('curl + openssl enroll against the EST server (cacerts, csrattrs, 202, simpleenroll, simplereenroll)', async (t) => {
  const fx = await createEstFixture({ retryAfterS: 7 });
  t.after(() => fx.close());
  const d = fx.dir;
  const serial = 'R3S-IOP-0001';
  const id = await fx.idevid(serial);
  writeFileSync(join(d, 'idevid.pem'), id.chainPem);
  writeFileSync(join(d, 'idevid.key'), id.keyPem, { mode: 0o600 });
  let n = 0;
  async function curl(op: string, args: string[]): Promise<CurlResult> {
    const bodyFile = join(d, `resp-${++n}.b64`);
    const hdrFile = join(d, `resp-${n}.hdr`);
    await exec('curl', ['-sS', '--tlsv1.3', '--cacert', fx.anchorFile, '-D', hdrFile, '-o', bodyFile, ...args, `${fx.server.url}/${op}`]);
    const lines = readFileSync(hdrFile, 'utf8').split(/\r?\n/);
    const status = Number(/^HTTP\/\S+ (\d+)/.exec(lines[0] ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status, headers, bodyFile };
  }
  const b64d = async (file: string): Promise<string> => {
    await exec('openssl', ['base64', '-d', '-in', file, '-out', file + '.der']);
    return file + '.der';
  };

  // cacerts: anonymous GET, certs-only PKCS#7 with the device CA
  const ca = await curl('cacerts', []);
  assert.equal(ca.status, 200);
  assert.equal(ca.headers['content-type'], 'application/pkcs7-mime');
  assert.equal(ca.headers['content-transfer-encoding'], 'base64');
  const caCerts = await exec('openssl', ['pkcs7', '-inform', 'DER', '-in', await b64d(ca.bodyFile), '-print_certs']);
  assert.match(caCerts.stdout, /subject=CN = Test DC Device CA/);
  writeFileSync(join(d, 'cacerts.pem'), caCerts.stdout);

  // csrattrs: DER that openssl can walk, naming P-256 and ecdsa-with-SHA256
  const attrs = await curl('csrattrs', []);
  assert.equal(attrs.status, 200);
  assert.equal(attrs.headers['content-type'], 'application/csrattrs');
  const parsed = await exec('openssl', ['asn1parse', '-inform', 'DER', '-in', await b64d(attrs.bodyFile)]);
  assert.match(parsed.stdout, /ecdsa-with-SHA256/);
  assert.match(parsed.stdout, /prime256v1/);

  // a CSR made by openssl req, sent as base64 DER
  await exec('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(d, 'op.key')]);
  await exec('openssl', [
    'req',
    '-new',
    '-key',
    join(d, 'op.key'),
    '-subj',
    `/CN=${serial}/serialNumber=${serial}`,
    '-outform',
    'DER',
    '-out',
    join(d, 'csr.der'),
  ]);
  await exec('openssl', ['base64', '-in', join(d, 'csr.der'), '-out', join(d, 'csr.b64')]);
  const enrollArgs = [
    '--cert',
    join(d, 'idevid.pem'),
    '--key',
    join(d, 'idevid.key'),
    '-H',
    'Content-Type: application/pkcs10',
    '--data-binary',
    `@${join(d, 'csr.b64')}`,
  ];

  // unclaimed: 202 + Retry-After
  const pending = await curl('simpleenroll', enrollArgs);
  assert.equal(pending.status, 202);
  assert.equal(pending.headers['retry-after'], '7');

  // no client certificate: 401; IDevID from a foreign CA: 403
  assert.equal((await curl('simpleenroll', enrollArgs.slice(4))).status, 401);
  const rogueKeys = await generateKeyPair(true);
  const rogueCa = await createSelfSignedCa(
    { cn: 'Rogue CA' },
    rogueKeys,
    new Date(Date.now() - 3600_000),
    new Date(Date.now() + 86_400_000),
  );
  const rogueLeafKeys = await generateKeyPair(true);
  const rogueLeaf = await issueCertificate({
    issuer: { cert: rogueCa, privateKey: rogueKeys.privateKey },
    subject: { cn: serial, serialNumber: serial },
    publicKey: rogueLeafKeys.publicKey,
    profile: 'client',
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  writeFileSync(join(d, 'rogue.pem'), rogueLeaf.toString('pem') + '\n' + rogueCa.toString('pem') + '\n');
  writeFileSync(join(d, 'rogue.key'), await exportPrivateKeyPem(rogueLeafKeys.privateKey));
  const rogue = await curl('simpleenroll', ['--cert', join(d, 'rogue.pem'), '--key', join(d, 'rogue.key'), ...enrollArgs.slice(4)]);
  assert.equal(rogue.status, 403);

  // claimed: 200, certs-only PKCS#7 holding the operational certificate
  await fx.claim(serial);
  const issued = await curl('simpleenroll', enrollArgs);
  assert.equal(issued.status, 200);
  assert.equal(issued.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
  const p7 = await exec('openssl', ['pkcs7', '-inform', 'DER', '-in', await b64d(issued.bodyFile), '-print_certs']);
  writeFileSync(join(d, 'op.pem'), p7.stdout);
  const text = (await exec('openssl', ['x509', '-in', join(d, 'op.pem'), '-noout', '-subject', '-ext', 'extendedKeyUsage', '-dates']))
    .stdout;
  assert.match(text, new RegExp(`CN = ${serial}`));
  assert.match(text, new RegExp(`serialNumber = ${serial}`));
  assert.match(text, /TLS Web Client Authentication/);
  await exec('openssl', ['verify', '-CAfile', join(d, 'cacerts.pem'), join(d, 'op.pem')]);
  // the issued certificate carries the key from the openssl CSR
  const certPub = (await exec('openssl', ['x509', '-in', join(d, 'op.pem'), '-noout', '-pubkey'])).stdout;
  const keyPub = (await exec('openssl', ['pkey', '-in', join(d, 'op.key'), '-pubout'])).stdout;
  assert.equal(certPub, keyPub);

  // simplereenroll with the operational certificate and a fresh key (rekey)
  await exec('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(d, 'op2.key')]);
  await exec('openssl', [
    'req',
    '-new',
    '-key',
    join(d, 'op2.key'),
    '-subj',
    `/CN=${serial}/serialNumber=${serial}`,
    '-outform',
    'DER',
    '-out',
    join(d, 'csr2.der'),
  ]);
  await exec('openssl', ['base64', '-in', join(d, 'csr2.der'), '-out', join(d, 'csr2.b64')]);
  const reArgs = [
    '--cert',
    join(d, 'op.pem'),
    '--key',
    join(d, 'op.key'),
    '-H',
    'Content-Type: application/pkcs10',
    '--data-binary',
    `@${join(d, 'csr2.b64')}`,
  ];
  const re = await curl('simplereenroll', reArgs);
  assert.equal(re.status, 200);
  const p7b = await exec('openssl', ['pkcs7', '-inform', 'DER', '-in', await b64d(re.bodyFile), '-print_certs']);
  assert.match(p7b.stdout, new RegExp(`subject=CN = ${serial}`));

  // the IDevID is not accepted for re-enrollment, the operational cert not for first enrollment
  assert.equal(
    (await curl('simplereenroll', ['--cert', join(d, 'idevid.pem'), '--key', join(d, 'idevid.key'), ...reArgs.slice(4)])).status,
    403,
  );
  assert.equal((await curl('simpleenroll', ['--cert', join(d, 'op.pem'), '--key', join(d, 'op.key'), ...enrollArgs.slice(4)])).status, 403);

  // wrong content type: 415; a CSR for another serial: 400
  assert.equal(
    (await curl('simpleenroll', [...enrollArgs.slice(0, 4), '-H', 'Content-Type: text/plain', '--data-binary', `@${join(d, 'csr.b64')}`]))
      .status,
    415,
  );
  await exec('openssl', [
    'req',
    '-new',
    '-key',
    join(d, 'op.key'),
    '-subj',
    '/CN=OTHER-1/serialNumber=OTHER-1',
    '-outform',
    'DER',
    '-out',
    join(d, 'csr3.der'),
  ]);
  await exec('openssl', ['base64', '-in', join(d, 'csr3.der'), '-out', join(d, 'csr3.b64')]);
  assert.equal((await curl('simpleenroll', [...enrollArgs.slice(0, 6), '--data-binary', `@${join(d, 'csr3.b64')}`])).status, 400);

  // revoked: refused at renewal
  await fx.revoke(serial);
  assert.equal((await curl('simplereenroll', reArgs)).status, 403);

  // every issuance is recorded
  const log = readFileSync(fx.issuanceLogFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { op: string; serial: string });
  assert.deepEqual(
    log.map((r) => [r.op, r.serial]),
    [
      ['simpleenroll', serial],
      ['simplereenroll', serial],
    ],
  );
});
