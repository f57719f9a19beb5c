// SPDX-License-Identifier: UNLICENSED
// The lab PKI, generated fresh for every lab: the DC CA (trust anchor written into factory blocks; signs
// the headend's and the EST server's certificates) and the device CA whose key the EST server issues
// operational certificates with. The factory CAs come from `connector factory init-ca` (main.ts). The
// Connectors get nothing from here but, through their factory block, the DC CA: they enroll over EST.
// A few ready-made device certificates remain for the headend refusal tests driven by openssl
// (expired, denylisted, other CA, and a valid spare).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate, type Issuer } from '../../shared/pki/x509.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface DeviceSpec {
  serial: string;
  /** Which CA signs it: the lab's device CA, or a stranger the headend must refuse. */
  issuer: 'device-ca' | 'rogue-ca';
  expired?: boolean;
}

export interface PemPair {
  cert: string;
  key: string;
}

/** Paths of everything written, relative to nothing: absolute paths under the PKI directory. */
export interface LabPkiFiles {
  dir: string;
  dcCa: string;
  deviceCa: string;
  /** The device CA's key: the EST server signs operational certificates with it. */
  deviceCaKey: string;
  rogueCa: string;
  headendCert: string;
  headendKey: string;
  estCert: string;
  estKey: string;
  devices: Readonly<Record<string, { cert: string; key: string }>>;
}

async function newCa(cn: string, now: Date): Promise<{ issuer: Issuer; pem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const cert = await createSelfSignedCa(
    { cn, o: 'connector-kit lab' },
    keys,
    new Date(now.getTime() - HOUR_MS),
    new Date(now.getTime() + 365 * DAY_MS),
    0,
  );
  return {
    issuer: { cert, privateKey: keys.privateKey },
    pem: cert.toString('pem'),
    keyPem: (await exportPrivateKeyPem(keys.privateKey)) + '\n',
  };
}

async function leaf(
  issuer: Issuer,
  o: { cn: string; serialNumber?: string; profile: 'server' | 'client'; notBefore: Date; notAfter: Date; dns?: string[]; ips?: string[] },
): Promise<PemPair> {
  const keys = await generateKeyPair();
  const cert = await issueCertificate({
    issuer,
    subject: { cn: o.cn, ...(o.serialNumber ? { serialNumber: o.serialNumber } : {}), o: 'connector-kit lab' },
    publicKey: keys.publicKey,
    profile: o.profile,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    ...(o.dns ? { dns: o.dns } : {}),
    ...(o.ips ? { ips: o.ips } : {}),
  });
  return { cert: cert.toString('pem') + '\n', key: (await exportPrivateKeyPem(keys.privateKey)) + '\n' };
}

export async function writeLabPki(
  dir: string,
  o: {
    now: Date;
    headendIps: readonly string[];
    headendDns: readonly string[];
    estIps: readonly string[];
    estDns: readonly string[];
    devices: readonly DeviceSpec[];
  },
): Promise<LabPkiFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (name: string, text: string, mode = 0o644): string => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  const dcCa = await newCa('connector-kit lab DC CA', o.now);
  const deviceCa = await newCa('connector-kit lab device CA', o.now);
  const rogueCa = await newCa('somebody else CA', o.now);
  const valid = { notBefore: new Date(o.now.getTime() - HOUR_MS), notAfter: new Date(o.now.getTime() + 30 * DAY_MS) };
  const server = await leaf(dcCa.issuer, {
    cn: o.headendDns[0] ?? 'headend',
    profile: 'server',
    ...valid,
    dns: [...o.headendDns],
    ips: [...o.headendIps],
  });
  const est = await leaf(dcCa.issuer, { cn: o.estDns[0] ?? 'est', profile: 'server', ...valid, dns: [...o.estDns], ips: [...o.estIps] });
  const devices: Record<string, { cert: string; key: string }> = {};
  for (const d of o.devices) {
    const when = d.expired ? { notBefore: new Date(o.now.getTime() - 10 * DAY_MS), notAfter: new Date(o.now.getTime() - DAY_MS) } : valid;
    const pair = await leaf(d.issuer === 'device-ca' ? deviceCa.issuer : rogueCa.issuer, {
      cn: d.serial,
      serialNumber: d.serial,
      profile: 'client',
      ...when,
    });
    devices[d.serial] = {
      cert: write(`${d.serial}.cert.pem`, pair.cert),
      key: write(`${d.serial}.key.pem`, pair.key, 0o600),
    };
  }
  return {
    dir,
    dcCa: write('dc-ca.pem', dcCa.pem + '\n'),
    deviceCa: write('device-ca.pem', deviceCa.pem + '\n'),
    deviceCaKey: write('device-ca.key.pem', deviceCa.keyPem, 0o600),
    rogueCa: write('rogue-ca.pem', rogueCa.pem + '\n'),
    headendCert: write('headend.cert.pem', server.cert),
    headendKey: write('headend.key.pem', server.key, 0o600),
    estCert: write('est.cert.pem', est.cert),
    estKey: write('est.key.pem', est.key, 0o600),
    devices,
  };
}
