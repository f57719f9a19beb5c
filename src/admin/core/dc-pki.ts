// SPDX-License-Identifier: UNLICENSED
// The datacentre's PKI (`connector dc init`), built in memory: what `step ca init` does for a web service,
// done for the Connector's two trust paths (docs/security.md):
// - the DC CA is the trust anchor the factory writes into every unit; it signs only the servers the units
//   dial (headend, EST server), so a unit pins exactly those;
// - the device CA is a separate root that signs the units' operational certificates (EST issues them, the
//   headend and the OTA broker trust them), so the CA that vouches for servers cannot mint devices and
//   vice versa.
// EC P-256 / ECDSA-SHA256 everywhere, the key type the devices use and DESIGN.md names.
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate, type Issuer } from '../../shared/pki/x509.js';

const DAY_MS = 86_400_000;
/** CAs live long (the anchor is in every unit's factory block); server certificates are renewed yearly. */
const CA_DAYS = 10 * 365;
const SERVER_DAYS = 397;

export interface DcPkiOptions {
  /** The organisation in every subject (O=). */
  readonly org: string;
  /** Names the units dial: DNS names and IP addresses for each server's subjectAltName. */
  readonly headend: { readonly dns: readonly string[]; readonly ips: readonly string[] };
  readonly est: { readonly dns: readonly string[]; readonly ips: readonly string[] };
  readonly now: Date;
}

export interface PkiFile {
  readonly name: string;
  readonly pem: string;
  /** 0600 for keys, 0644 for certificates. */
  readonly mode: number;
}

/** Every file `dc init` writes, in the order they are listed to the operator. */
export const DC_PKI_FILES = [
  'dc-ca.pem',
  'dc-ca.key.pem',
  'device-ca.pem',
  'device-ca.key.pem',
  'headend.cert.pem',
  'headend.key.pem',
  'est.cert.pem',
  'est.key.pem',
] as const;

const withNewline = (pem: string): string => (pem.endsWith('\n') ? pem : pem + '\n');

async function rootCa(cn: string, org: string, now: Date): Promise<{ issuer: Issuer; cert: string; key: string }> {
  const keys = await generateKeyPair();
  // pathLength 0: these CAs sign leaf certificates only, never another CA.
  const cert = await createSelfSignedCa(
    { cn, o: org },
    keys,
    new Date(now.getTime() - DAY_MS),
    new Date(now.getTime() + CA_DAYS * DAY_MS),
    0,
  );
  return {
    issuer: { cert, privateKey: keys.privateKey },
    cert: cert.toString('pem') + '\n',
    key: withNewline(await exportPrivateKeyPem(keys.privateKey)),
  };
}

async function server(issuer: Issuer, cn: string, org: string, names: { dns: readonly string[]; ips: readonly string[] }, now: Date) {
  const keys = await generateKeyPair();
  const cert = await issueCertificate({
    issuer,
    subject: { cn, o: org },
    publicKey: keys.publicKey,
    profile: 'server',
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + SERVER_DAYS * DAY_MS),
    dns: names.dns,
    ips: names.ips,
  });
  return { cert: cert.toString('pem') + '\n', key: withNewline(await exportPrivateKeyPem(keys.privateKey)) };
}

/** Generates the whole PKI; nothing is written here. The names are checked by the caller (checkServerNames). */
export async function createDcPki(o: DcPkiOptions): Promise<PkiFile[]> {
  const dc = await rootCa(`${o.org} DC CA`, o.org, o.now);
  const device = await rootCa(`${o.org} device CA`, o.org, o.now);
  const cn = (s: { dns: readonly string[]; ips: readonly string[] }): string => s.dns[0] ?? s.ips[0] ?? '';
  const headend = await server(dc.issuer, cn(o.headend), o.org, o.headend, o.now);
  const est = await server(dc.issuer, cn(o.est), o.org, o.est, o.now);
  const cert = 0o644;
  const key = 0o600;
  return [
    { name: 'dc-ca.pem', pem: dc.cert, mode: cert },
    { name: 'dc-ca.key.pem', pem: dc.key, mode: key },
    { name: 'device-ca.pem', pem: device.cert, mode: cert },
    { name: 'device-ca.key.pem', pem: device.key, mode: key },
    // Chains: leaf then the DC CA, so a client holding only the anchor can still build the path.
    { name: 'headend.cert.pem', pem: headend.cert + dc.cert, mode: cert },
    { name: 'headend.key.pem', pem: headend.key, mode: key },
    { name: 'est.cert.pem', pem: est.cert + dc.cert, mode: cert },
    { name: 'est.key.pem', pem: est.key, mode: key },
  ];
}
