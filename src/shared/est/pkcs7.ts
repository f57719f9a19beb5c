// SPDX-License-Identifier: UNLICENSED
// CMS "certs-only" SignedData (RFC 5652 section 5, degenerate case with no signers): the body of EST
// /cacerts, /simpleenroll and /simplereenroll responses (RFC 7030 sections 4.1.3 and 4.2.3). Pure.
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import {
  CertificateChoices,
  CertificateSet,
  ContentInfo,
  EncapsulatedContentInfo,
  SignedData,
  SignerInfos,
  DigestAlgorithmIdentifiers,
  id_data,
  id_signedData,
} from '@peculiar/asn1-cms';
import { ConnectorError } from '../errors.js';

/** DER certificates in, DER ContentInfo out. */
export function encodeCertsOnly(certsDer: readonly Uint8Array[]): Buffer {
  const set = new CertificateSet(certsDer.map((der) => new CertificateChoices({ certificate: AsnConvert.parse(der, Certificate) })));
  const sd = new SignedData({
    version: 1,
    digestAlgorithms: new DigestAlgorithmIdentifiers([]),
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: set,
    signerInfos: new SignerInfos([]),
  });
  const ci = new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(sd) });
  return Buffer.from(AsnConvert.serialize(ci));
}

/** DER ContentInfo in, the DER certificates it carries out (order as sent). */
export function decodeCertsOnly(der: Uint8Array): Buffer[] {
  let sd: SignedData;
  try {
    const ci = AsnConvert.parse(der, ContentInfo);
    if (ci.contentType !== id_signedData) throw new ConnectorError('CK_ERR_EST', `content type ${ci.contentType} is not signedData`);
    sd = AsnConvert.parse(ci.content, SignedData);
  } catch (e) {
    throw new ConnectorError('CK_ERR_EST', `response is not a CMS certs-only structure: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const out: Buffer[] = [];
  for (const c of sd.certificates ?? []) {
    if (c.certificate) out.push(Buffer.from(AsnConvert.serialize(c.certificate)));
  }
  return out;
}

/** EST bodies are base64 (Content-Transfer-Encoding: base64); tolerate line breaks and whitespace. */
export function decodeBase64Body(body: Buffer | string): Buffer {
  const text = (typeof body === 'string' ? body : body.toString('latin1')).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new ConnectorError('CK_ERR_EST', 'body is not base64 (EST sends base64 DER, RFC 7030 section 4)');
  }
  return Buffer.from(text, 'base64');
}

/** Base64 with 64-column lines, as MIME does. */
export function encodeBase64Body(der: Uint8Array): string {
  return (
    (
      Buffer.from(der)
        .toString('base64')
        .match(/.{1,64}/g) ?? []
    ).join('\r\n') + '\r\n'
  );
}
