// SPDX-License-Identifier: UNLICENSED
// One EST enrollment exchange on the device: a fresh P-256 key (it never leaves the device), a CSR with
// CN = serialNumber = serial, the POST, the CA chain from /cacerts, and the result stored and loaded
// back. The life cycle (when to enroll, how to wait) is in core/identity/lifecycle.ts.
import { X509Certificate } from 'node:crypto';
import type { Logger } from '../../../shared/log.js';
import { createCsr, exportPrivateKeyPem, generateKeyPair } from '../../../shared/pki/x509.js';
import type { WallClock } from '../../../shared/ports.js';
import type { EnrollMaterial, EnrollOutcome } from '../../core/identity/lifecycle.js';
import { estCaCerts, estSimpleEnroll, estSimpleReenroll } from './est-client.js';
import { loadIdentity, saveIdentity } from './store.js';

export interface EnrollerOptions {
  identityDir: string;
  clock: WallClock;
  log: Logger;
}

function pem(der: Buffer): string {
  return new X509Certificate(der).toString();
}

export async function enrollOnce(o: EnrollerOptions, op: 'simpleenroll' | 'simplereenroll', m: EnrollMaterial): Promise<EnrollOutcome> {
  const keys = await generateKeyPair(true);
  const csr = await createCsr({ cn: m.serial, serialNumber: m.serial }, keys);
  const client = { baseUrl: m.estUrl, tls: { ca: m.anchorPem, cert: m.authCertPem, key: m.authKeyPem }, nowMs: o.clock.now() };
  const res = await (op === 'simpleenroll' ? estSimpleEnroll : estSimpleReenroll)(client, new Uint8Array(csr.rawData));
  if (res.kind !== 'issued') return { ok: false, result: res };
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const spki = Buffer.from(await globalThis.crypto.subtle.exportKey('spki', keys.publicKey));
  const leafDer = res.certsDer.find((d) => new X509Certificate(d).publicKey.export({ type: 'spki', format: 'der' }).equals(spki));
  if (!leafDer) return { ok: false, result: { kind: 'error', message: `EST ${op}: the response holds no certificate for our key` } };
  const cas = await estCaCerts({ baseUrl: m.estUrl, tls: { ca: m.anchorPem }, nowMs: o.clock.now() });
  const chain = cas.kind === 'issued' ? cas.certsDer.map(pem) : [];
  if (cas.kind !== 'issued') o.log.warn('EST cacerts failed; storing the certificate without its chain', { detail: cas.message });
  saveIdentity(o.identityDir, keyPem, [pem(leafDer), ...chain].join(''), m.anchorPem);
  const loaded = loadIdentity(o.identityDir, o.clock.now());
  if (!loaded.ok) return { ok: false, result: { kind: 'error', message: `stored identity does not load back: ${loaded.reason}` } };
  return { ok: true, identity: loaded.identity };
}
