// SPDX-License-Identifier: UNLICENSED
// The EST service's decisions without a socket: routing, which client certificate each operation takes,
// the content-type and body checks, and how each enrollment outcome becomes a status code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { silentLogger } from '../../../../src/shared/log.js';
import { createCsr, createSelfSignedCa, generateKeyPair, issueCertificate, type Issuer } from '../../../../src/shared/pki/x509.js';
import { claimDevice, importAllowlist, parseRegistry, type Registry } from '../../../../src/shared/registry/registry.js';
import { decodeBase64Body, decodeCertsOnly, encodeBase64Body } from '../../../../src/shared/est/pkcs7.js';
import { CT_PKCS10, CT_PKCS7_CERTS_ONLY, EST_MAX_BODY_BYTES } from '../../../../src/shared/est/protocol.js';
import { createEstService, type EstClient, type EstRequest } from '../../../../src/enroll/core/est-service.js';
import type { IssuanceRecord } from '../../../../src/enroll/core/issuer.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;

async function ca(cn: string): Promise<Issuer> {
  const keys = await generateKeyPair();
  return {
    cert: await createSelfSignedCa({ cn }, keys, new Date(NOW.getTime() - DAY), new Date(NOW.getTime() + 365 * DAY)),
    privateKey: keys.privateKey,
  };
}

async function setup(o: { recordIssuance?: (r: IssuanceRecord) => void } = {}) {
  const factory = await ca('factory');
  const device = await ca('device');
  const serial = 'UNIT-0001';
  const idKeys = await generateKeyPair();
  const idevid = await issueCertificate({
    issuer: factory,
    subject: { cn: serial, serialNumber: serial },
    publicKey: idKeys.publicKey,
    profile: 'client',
    notBefore: new Date(NOW.getTime() - DAY),
    notAfter: new Date(NOW.getTime() + DAY),
  });
  const opKeys = await generateKeyPair();
  const csr = await createCsr({ cn: serial, serialNumber: serial }, opKeys);
  let registry: Registry = importAllowlist(
    parseRegistry({ version: 1, tenants: { acme: { segments: { lan: { vni: 1001, vteps: ['10.0.0.1'] } } } }, devices: {}, denylist: [] }),
    [{ serial }],
    NOW,
  );
  const issued: IssuanceRecord[] = [];
  const service = createEstService({
    factoryAnchors: [new NodeX509(Buffer.from(factory.cert.rawData))],
    deviceAnchors: [new NodeX509(Buffer.from(device.cert.rawData))],
    deviceCa: device,
    caCerts: [new Uint8Array(device.cert.rawData)],
    certLifetimeS: 3600,
    backdateS: 60,
    retryAfterS: 7,
    registry: () => registry,
    recordIssuance: o.recordIssuance ?? ((r) => issued.push(r)),
    now: () => NOW,
    log: silentLogger,
  });
  const client: EstClient = {
    chain: [new Uint8Array(idevid.rawData), new Uint8Array(factory.cert.rawData)],
    authorized: true,
    remote: '192.0.2.7',
  };
  const csrBody = Buffer.from(encodeBase64Body(Buffer.from(csr.rawData)));
  const enroll = (o: Partial<EstRequest> = {}): EstRequest => ({
    method: 'POST',
    url: '/.well-known/est/simpleenroll',
    contentType: CT_PKCS10,
    client,
    readBody: async () => csrBody,
    ...o,
  });
  return { serial, service, issued, enroll, client, claim: () => (registry = claimDevice(registry, serial, 'acme', NOW)) };
}

test('paths and methods: unknown paths are 404, a wrong method is 405 with Allow, cacerts is public', async () => {
  const { service, client } = await setup();
  const get = (url: string, method = 'GET'): EstRequest => ({
    method,
    url,
    contentType: undefined,
    client: { ...client, chain: [] },
    readBody: async () => Buffer.alloc(0),
  });
  assert.equal((await service(get('/nope'))).status, 404);
  const wrong = await service(get('/.well-known/est/simpleenroll'));
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers['Allow'], 'POST');
  const ca = await service(get('/.well-known/est/cacerts'));
  assert.equal(ca.status, 200);
  assert.equal(decodeCertsOnly(decodeBase64Body(Buffer.from(ca.body))).length, 1);
  assert.equal((await service(get('/.well-known/est/label1/csrattrs'))).status, 200, 'an optional CA label is accepted');
});

test('enrollment needs a client certificate from the right CA', async () => {
  const { service, enroll, client } = await setup();
  assert.equal((await service(enroll({ client: { ...client, chain: [] } }))).status, 401);
  assert.equal((await service(enroll({ client: { ...client, authorized: false, authorizationError: 'CERT_HAS_EXPIRED' } }))).status, 403);
  assert.equal(
    (await service(enroll({ url: '/.well-known/est/simplereenroll' }))).status,
    403,
    'reenroll takes an operational cert, not an IDevID',
  );
});

test('content type, body size and body encoding are checked before the CSR', async () => {
  const { service, enroll } = await setup();
  assert.equal((await service(enroll({ contentType: 'application/json' }))).status, 415);
  assert.equal((await service(enroll({ readBody: async () => undefined }))).status, 413, `bodies over ${EST_MAX_BODY_BYTES} bytes`);
  assert.equal((await service(enroll({ readBody: async () => Buffer.from('%%%') }))).status, 400);
});

test('an unclaimed unit gets 202 with Retry-After; once claimed, a certificate that is logged before it is sent', async () => {
  const { service, enroll, issued, claim, serial } = await setup();
  const pending = await service(enroll());
  assert.equal(pending.status, 202);
  assert.equal(pending.headers['Retry-After'], '7');
  assert.equal(issued.length, 0);
  claim();
  const ok = await service(enroll());
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['Content-Type'], CT_PKCS7_CERTS_ONLY);
  const [der] = decodeCertsOnly(decodeBase64Body(Buffer.from(ok.body)));
  assert.ok(der);
  const cert = new NodeX509(der);
  assert.match(cert.subject, new RegExp(`CN=${serial}`));
  assert.equal(issued.length, 1);
  assert.equal(issued[0]?.serial, serial);
  assert.equal(issued[0]?.remote, '192.0.2.7');
});

test('a failing port (the issuance log) becomes a 500, not a crash', async () => {
  const { service, enroll, claim } = await setup({
    recordIssuance: () => {
      throw new Error('disk full');
    },
  });
  claim();
  assert.equal((await service(enroll())).status, 500);
});
