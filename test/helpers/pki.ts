// SPDX-License-Identifier: UNLICENSED
// The tests' PKI, generated fresh for every test (EC P-256, with the kit's own x509 code): a DC CA that
// signs the server certificate (what clients pin), a device CA that signs client certificates (what the
// server trusts), and a foreign CA with the device CA's name (a stranger that must be refused). Files are
// written world-readable into `dir` (a broker may run as its own user); private keys too, as the test
// PKI protects nothing. The lab has its own PKI (src/lab/adapters/pki.ts): it is part of `connector lab`.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { alpnOffer } from '../../src/shared/tunnel/records-v2.js';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate, type Issuer } from '../../src/shared/pki/x509.js';

const DAY_MS = 86_400_000;

export interface Identity {
  /** The certificate's CN (a device serial, `localhost`, a controller name). */
  readonly cn: string;
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCa {
  readonly pem: string;
  readonly file: string;
  readonly keyPem: string;
  readonly keyFile: string;
  readonly issuer: Issuer;
}

export interface ClientOptions {
  /** notAfter a day ago. */
  expired?: boolean;
  /** Signed by the foreign CA: same name as the device CA, another key. */
  foreign?: boolean;
  /** Only a CN, no serialNumber attribute (2.5.4.5). */
  noSerialAttr?: boolean;
}

export interface TestPki {
  readonly dir: string;
  /** Signs the server certificate; what clients pin (the DC trust anchor): dc-ca.pem, dc-ca.key.pem. */
  readonly dcCa: TestCa;
  /** Signs client certificates; what servers trust for clients: device-ca.pem, device-ca.key.pem (the DC CA itself with `singleCa`). */
  readonly deviceCa: TestCa;
  /** For `localhost`, 127.0.0.1 and `serverIps`, signed by the DC CA: server.cert.pem, server.key.pem. */
  readonly server: Identity;
  /** A client certificate issued up front (`clients`); throws for any other CN. */
  identity(cn: string): Identity;
  /** A fresh client certificate, CN = serialNumber = `cn`, valid for a week unless `expired`. */
  client(cn: string, opts?: ClientOptions): Promise<Identity>;
}

export interface TestPkiOptions {
  /** IP addresses the server certificate covers besides 127.0.0.1. */
  serverIps?: readonly string[];
  /** DNS names the server certificate covers besides localhost. */
  serverDns?: readonly string[];
  /** One CA for servers and clients: a broker that checks clients against the CA its clients pin. */
  singleCa?: boolean;
  /** Client certificates issued up front, for `identity(cn)`. */
  clients?: readonly string[];
  /** The CAs' common names, for tests that read them back (default `test DC CA`, `test device CA`). */
  caNames?: { dc?: string; device?: string };
}

function writeWorldReadable(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o644);
  return path;
}

async function createCa(dir: string, name: string, cn: string): Promise<TestCa> {
  const keys = await generateKeyPair();
  const now = Date.now();
  // Ten years: tests that move a server's clock forward (renewal) must not outlive their CA.
  const cert = await createSelfSignedCa({ cn, o: 'connector-kit test' }, keys, new Date(now - DAY_MS), new Date(now + 3650 * DAY_MS));
  const pem = cert.toString('pem') + '\n';
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  return {
    pem,
    file: writeWorldReadable(join(dir, `${name}.pem`), pem),
    keyPem,
    keyFile: writeWorldReadable(join(dir, `${name}.key.pem`), keyPem),
    issuer: { cert, privateKey: keys.privateKey },
  };
}

export async function createTestPki(dir: string, o: TestPkiOptions = {}): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const dcName = o.caNames?.dc ?? 'test DC CA';
  const deviceName = o.singleCa ? dcName : (o.caNames?.device ?? 'test device CA');
  const dcCa = await createCa(dir, 'dc-ca', dcName);
  const deviceCa = o.singleCa ? dcCa : await createCa(dir, 'device-ca', deviceName);
  const foreignCa = await createCa(dir, 'foreign-ca', deviceName);
  let n = 0;
  const leaf = async (
    ca: TestCa,
    cn: string,
    cert: Omit<Parameters<typeof issueCertificate>[0], 'issuer' | 'publicKey'>,
    stem?: string,
  ): Promise<Identity> => {
    const keys = await generateKeyPair();
    const pem = (await issueCertificate({ ...cert, issuer: ca.issuer, publicKey: keys.publicKey })).toString('pem') + '\n';
    const key = await exportPrivateKeyPem(keys.privateKey);
    const name = stem ?? `${cn.replace(/[^A-Za-z0-9._-]/g, '_')}-${++n}`;
    return {
      cn,
      cert: pem,
      key,
      certFile: writeWorldReadable(join(dir, `${name}.cert.pem`), pem),
      keyFile: writeWorldReadable(join(dir, `${name}.key.pem`), key),
    };
  };
  const now = Date.now();
  const server = await leaf(
    dcCa,
    'localhost',
    {
      subject: { cn: 'localhost' },
      profile: 'server',
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 365 * DAY_MS),
      dns: ['localhost', ...(o.serverDns ?? [])],
      ips: ['127.0.0.1', ...(o.serverIps ?? [])],
    },
    'server',
  );
  const client = (cn: string, c: ClientOptions = {}): Promise<Identity> => {
    const at = Date.now();
    return leaf(c.foreign ? foreignCa : deviceCa, cn, {
      subject: c.noSerialAttr ? { cn } : { cn, serialNumber: cn },
      profile: 'client',
      notBefore: new Date(at - (c.expired ? 10 : 1) * DAY_MS),
      notAfter: new Date(at + (c.expired ? -DAY_MS : 7 * DAY_MS)),
    });
  };
  const issued = new Map<string, Identity>();
  for (const cn of o.clients ?? []) issued.set(cn, await client(cn));
  return {
    dir,
    dcCa,
    deviceCa,
    server,
    identity(cn) {
      const id = issued.get(cn);
      if (!id) throw new RangeError(`no test identity for ${cn}: list it in createTestPki's clients`);
      return id;
    },
    client,
  };
}

/**
 * A device's TLS connection to a headend listener on loopback: its identity `cn` from `pki`, the DC CA
 * trusted, tunnel protocol v2 offered by ALPN. Errors are left to the caller's close handling.
 */
export function connectDevice(pki: TestPki, port: number, cn: string): TLSSocket {
  const id = pki.identity(cn);
  const s = tlsConnect({
    host: '127.0.0.1',
    port,
    key: id.key,
    cert: id.cert,
    ca: pki.dcCa.pem,
    servername: 'localhost',
    ALPNProtocols: alpnOffer(2),
  });
  s.on('error', () => {});
  return s;
}
