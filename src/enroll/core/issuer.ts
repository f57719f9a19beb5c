// SPDX-License-Identifier: UNLICENSED
// The EST server's policy: given who authenticated (serial from the IDevID or the operational cert),
// the CSR and the registry, issue an operational certificate, ask the client to come back, or refuse.
// No sockets or files; time comes in as `now`.
import { certFingerprint, issueCertificate, subjectSerial, x509, type Issuer } from '../../shared/pki/x509.js';
import { enrollmentDecision, type Registry } from '../../shared/registry/registry.js';

export type EnrollOp = 'simpleenroll' | 'simplereenroll';

export interface IssuanceRecord {
  time: string;
  event: 'issued';
  op: EnrollOp;
  serial: string;
  tenant: string;
  certSerial: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  /** Fingerprint of the certificate the client authenticated with (IDevID or previous operational). */
  authFingerprint: string;
  remote?: string;
}

export type EnrollOutcome =
  | { kind: 'issued'; certDer: Buffer; record: IssuanceRecord }
  | { kind: 'pending'; retryAfterS: number; reason: 'unclaimed' }
  | { kind: 'refused'; status: 400 | 403; reason: string; message: string };

export interface EnrollInput {
  op: EnrollOp;
  /** Serial of the authenticated client certificate. */
  clientSerial: string;
  clientFingerprint: string;
  csrDer: Uint8Array;
  registry: Registry;
  deviceCa: Issuer;
  now: Date;
  lifetimeS: number;
  backdateS: number;
  retryAfterS: number;
  remote?: string;
}

async function parseCsr(der: Uint8Array): Promise<x509.Pkcs10CertificateRequest | string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
  } catch (e) {
    return `body is not a PKCS#10 request: ${(e as Error).message}`;
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') return 'the CSR key must be EC P-256';
  if (!(await csr.verify())) return 'the CSR signature does not verify (proof of possession failed)';
  return csr;
}

export async function decideEnrollment(i: EnrollInput): Promise<EnrollOutcome> {
  const csr = await parseCsr(i.csrDer);
  if (typeof csr === 'string') return { kind: 'refused', status: 400, reason: 'bad-csr', message: csr };
  const csrSerial = subjectSerial(csr.subject);
  if (csrSerial !== i.clientSerial) {
    return {
      kind: 'refused',
      status: 400,
      reason: 'subject-mismatch',
      message: `CSR subject serial "${csrSerial ?? ''}" differs from the authenticated serial "${i.clientSerial}"`,
    };
  }
  const dev = i.registry.devices[i.clientSerial];
  if (i.op === 'simpleenroll' && dev?.idevidFingerprint && dev.idevidFingerprint !== i.clientFingerprint) {
    return {
      kind: 'refused',
      status: 403,
      reason: 'idevid-mismatch',
      message: `the factory certificate of ${i.clientSerial} is not the one recorded in the factory manifest`,
    };
  }
  const decision = enrollmentDecision(i.registry, i.clientSerial);
  if (!decision.ok) {
    if (decision.reason === 'unclaimed') return { kind: 'pending', retryAfterS: i.retryAfterS, reason: 'unclaimed' };
    return { kind: 'refused', status: 403, reason: decision.reason, message: `serial ${i.clientSerial} is ${decision.reason}` };
  }
  const notBefore = new Date(i.now.getTime() - i.backdateS * 1000);
  const notAfter = new Date(i.now.getTime() + i.lifetimeS * 1000);
  const cert = await issueCertificate({
    issuer: i.deviceCa,
    subject: { cn: i.clientSerial, serialNumber: i.clientSerial },
    publicKey: await csr.publicKey.export(),
    profile: 'client',
    notBefore,
    notAfter,
  });
  const record: IssuanceRecord = {
    time: i.now.toISOString(),
    event: 'issued',
    op: i.op,
    serial: i.clientSerial,
    tenant: decision.tenant,
    certSerial: cert.serialNumber,
    fingerprint: certFingerprint(cert),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    authFingerprint: i.clientFingerprint,
    ...(i.remote ? { remote: i.remote } : {}),
  };
  return { kind: 'issued', certDer: Buffer.from(cert.rawData), record };
}
