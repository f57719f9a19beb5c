// SPDX-License-Identifier: UNLICENSED
// Semantic checks of decoded factory data beyond the checksum: the IDevID key belongs to the IDevID
// certificate, the anchor parses, and (at the station or DC) the IDevID chains to a given factory CA.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { splitPemChain } from '../pki/x509.js';
import type { FactoryData } from './factory-block.js';

export function checkFactoryData(d: FactoryData): string | undefined {
  try {
    const leaf = new X509Certificate(d.idevidChainPem);
    const a = leaf.publicKey.export({ type: 'spki', format: 'der' });
    const b = createPublicKey(d.idevidKeyPem).export({ type: 'spki', format: 'der' });
    if (!a.equals(b)) return 'the IDevID key does not match the IDevID certificate';
    new X509Certificate(d.dcAnchorPem);
  } catch (e) {
    return `unreadable certificate or key: ${(e as Error).message}`;
  }
  return undefined;
}

/** Does the IDevID (first cert) chain, through the block's own intermediates, to `caPem`? */
export function idevidIssuedBy(d: FactoryData, caPem: string): boolean {
  const ca = new X509Certificate(caPem);
  const chain = splitPemChain(d.idevidChainPem).map((p) => new X509Certificate(p));
  let cur = chain[0];
  for (let i = 0; cur && i < 8; i++) {
    if (cur.checkIssued(ca) && cur.verify(ca.publicKey)) return true;
    const c: X509Certificate = cur;
    cur = chain.find((x) => x !== c && c.checkIssued(x) && c.verify(x.publicKey) && x.fingerprint256 !== c.fingerprint256);
  }
  return false;
}
