// SPDX-License-Identifier: UNLICENSED
// The IDevID the factory CA issues per unit (IEEE 802.1AR): a fresh P-256 key, CN and serialNumber = the
// unit's serial. The key is returned to the caller, which writes it into the unit and drops it.
import { exportPrivateKeyPem, generateKeyPair, issueCertificate, type Issuer, type x509 } from '../../shared/pki/x509.js';

/** IEEE 802.1AR: an IDevID has no meaningful expiry (GeneralizedTime 99991231235959Z). */
export const IDEVID_NOT_AFTER = new Date('9999-12-31T23:59:59Z');

export interface Idevid {
  cert: x509.X509Certificate;
  /** Leaf then factory CA, PEM. */
  chainPem: string;
  keyPem: string;
}

export async function issueIdevid(ca: Issuer, serial: string, hwRev: string, now: Date): Promise<Idevid> {
  const keys = await generateKeyPair(true);
  const cert = await issueCertificate({
    issuer: ca,
    subject: { cn: serial, serialNumber: serial, ou: `hw ${hwRev}` },
    publicKey: keys.publicKey,
    profile: 'client',
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: IDEVID_NOT_AFTER,
  });
  return {
    cert,
    chainPem: `${cert.toString('pem')}\n${ca.cert.toString('pem')}\n`,
    keyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}
