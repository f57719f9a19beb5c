// SPDX-License-Identifier: UNLICENSED
// X.509 building blocks shared by the lab PKI, the factory CA, the EST server and tests: EC P-256 keys
// from node:crypto (WebCrypto), certificates and CSRs from @peculiar/x509. No file I/O here.
import 'reflect-metadata';
import { createHash, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import type { webcrypto as WebCryptoTypes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ConnectorError } from '../errors.js';

type CryptoKey = WebCryptoTypes.CryptoKey;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** X.520 serialNumber; @peculiar/x509 has no short name for it, so names use the dotted OID. */
export const OID_SERIAL_NUMBER = '2.5.4.5';
export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export type KeyPair = WebCryptoTypes.CryptoKeyPair;
export type { CryptoKey };

export interface SubjectFields {
  cn: string;
  serialNumber?: string;
  o?: string;
  ou?: string;
}

export interface Issuer {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

export type Profile = 'ca' | 'server' | 'client' | 'server+client';

export interface IssueOptions {
  issuer: Issuer;
  subject: SubjectFields;
  publicKey: CryptoKey;
  profile: Profile;
  notBefore: Date;
  notAfter: Date;
  /** DNS names and IP addresses for the subjectAltName of server certificates. */
  dns?: readonly string[];
  ips?: readonly string[];
  pathLength?: number;
}

export async function generateKeyPair(extractable = true): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(EC_ALG, extractable, ['sign', 'verify']) as Promise<KeyPair>;
}

function escapeRdn(v: string): string {
  return v.replace(/([,+"\\<>;=#])/g, '\\$1');
}

export function subjectName(s: SubjectFields): string {
  const parts = [`CN=${escapeRdn(s.cn)}`];
  if (s.serialNumber !== undefined) parts.push(`${OID_SERIAL_NUMBER}=${escapeRdn(s.serialNumber)}`);
  if (s.ou !== undefined) parts.push(`OU=${escapeRdn(s.ou)}`);
  if (s.o !== undefined) parts.push(`O=${escapeRdn(s.o)}`);
  return parts.join(', ');
}

/** Positive 128-bit random serial, as RFC 5280 section 4.1.2.2 asks (at most 20 octets, unpredictable). */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f;
  return Buffer.from(b).toString('hex');
}

async function extensionsFor(o: IssueOptions | { profile: 'ca'; publicKey: CryptoKey; pathLength?: number }) {
  const exts: x509.Extension[] = [];
  if (o.profile === 'ca') {
    exts.push(new x509.BasicConstraintsExtension(true, o.pathLength, true));
    exts.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  } else {
    exts.push(new x509.BasicConstraintsExtension(false, undefined, true));
    exts.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true));
    const eku: string[] = [];
    if (o.profile === 'server' || o.profile === 'server+client') eku.push(EKU_SERVER_AUTH);
    if (o.profile === 'client' || o.profile === 'server+client') eku.push(EKU_CLIENT_AUTH);
    exts.push(new x509.ExtendedKeyUsageExtension(eku, false));
    const io = o as IssueOptions;
    const alt = [
      ...(io.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(io.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    if (alt.length > 0) exts.push(new x509.SubjectAlternativeNameExtension(alt, false));
  }
  exts.push(await x509.SubjectKeyIdentifierExtension.create(o.publicKey));
  return exts;
}

export async function createSelfSignedCa(
  subject: SubjectFields,
  keys: KeyPair,
  notBefore: Date,
  notAfter: Date,
  pathLength?: number,
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(subject),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: await extensionsFor({ profile: 'ca', publicKey: keys.publicKey, ...(pathLength !== undefined ? { pathLength } : {}) }),
  });
}

export async function issueCertificate(o: IssueOptions): Promise<x509.X509Certificate> {
  const exts = await extensionsFor(o);
  exts.push(await x509.AuthorityKeyIdentifierExtension.create(o.issuer.cert, false));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectName(o.subject),
    issuer: o.issuer.cert.subject,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    publicKey: o.publicKey,
    signingKey: o.issuer.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: exts,
  });
}

export async function createCsr(subject: SubjectFields, keys: KeyPair): Promise<x509.Pkcs10CertificateRequest> {
  return x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectName(subject),
    keys,
    signingAlgorithm: SIGN_ALG,
  });
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new ConnectorError('CK_ERR_CONFIG_INVALID', 'no PEM block in private key text');
  return webcrypto.subtle.importKey('pkcs8', der, EC_ALG, true, ['sign']);
}

export function certFromPem(pem: string): x509.X509Certificate {
  return new x509.X509Certificate(pem);
}

/** Splits a PEM bundle into its certificate blocks, in order. */
export function splitPemChain(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** SHA-256 over the DER certificate, lowercase hex: what audit logs and manifests record. */
export function certFingerprint(cert: x509.X509Certificate | NodeX509 | string): string {
  const der = typeof cert === 'string' ? new NodeX509(cert).raw : cert instanceof NodeX509 ? cert.raw : Buffer.from(cert.rawData);
  return createHash('sha256').update(der).digest('hex');
}

/** The device serial from a certificate subject: the serialNumber attribute, else the CN. */
export function subjectSerial(subject: string): string | undefined {
  const sn = /(?:^|[,\n]\s*)(?:serialNumber|2\.5\.4\.5)=([^,\n]+)/.exec(subject)?.[1];
  const cn = /(?:^|[,\n]\s*)CN=([^,\n]+)/.exec(subject)?.[1];
  return (sn ?? cn)?.trim();
}

export { x509 };
