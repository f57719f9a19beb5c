// SPDX-License-Identifier: UNLICENSED
// The load tool's PKI and registry: one DC CA (the headend's certificate) and one device CA; N device
// certificates with distinct serials/CNs. Key generation dominates certificate issue, so the devices
// share one key pair (the headend identifies a device by its certificate's serial and fingerprint, both
// distinct). The registry has K tenants of one segment each, devices spread round-robin, and a probe
// device in a tenant of its own.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCa, exportPrivateKeyPem, generateKeyPair, issueCertificate } from '../../src/shared/pki/x509.js';

const DAY_MS = 86_400_000;

export interface FleetPki {
  dcCaPem: string;
  deviceCaFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  deviceKeyPem: string;
  devices: { serial: string; cert: string }[];
  probe: { cert: string; key: string };
}

export async function makeFleetPki(dir: string, n: number): Promise<FleetPki> {
  const now = Date.now();
  const nb = new Date(now - DAY_MS);
  const na = new Date(now + 30 * DAY_MS);
  const dcKeys = await generateKeyPair();
  const dcCa = await createSelfSignedCa({ cn: 'load DC CA' }, dcKeys, nb, na);
  const devKeys = await generateKeyPair();
  const devCa = await createSelfSignedCa({ cn: 'load device CA' }, devKeys, nb, na);
  const srvKeys = await generateKeyPair();
  const srv = await issueCertificate({
    issuer: { cert: dcCa, privateKey: dcKeys.privateKey },
    publicKey: srvKeys.publicKey,
    subject: { cn: 'localhost' },
    profile: 'server',
    notBefore: nb,
    notAfter: na,
    dns: ['localhost'],
    ips: ['127.0.0.1'],
  });
  const leafKeys = await generateKeyPair();
  const devIssuer = { cert: devCa, privateKey: devKeys.privateKey };
  const leaf = async (serial: string): Promise<string> =>
    (
      await issueCertificate({
        issuer: devIssuer,
        publicKey: leafKeys.publicKey,
        subject: { cn: serial, serialNumber: serial },
        profile: 'client',
        notBefore: nb,
        notAfter: na,
      })
    ).toString('pem') + '\n';
  const devices: { serial: string; cert: string }[] = [];
  for (let i = 0; i < n; i++) {
    const serial = `LOAD-${String(i).padStart(6, '0')}`;
    devices.push({ serial, cert: await leaf(serial) });
  }
  const deviceKeyPem = await exportPrivateKeyPem(leafKeys.privateKey);
  const w = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  return {
    dcCaPem: dcCa.toString('pem') + '\n',
    deviceCaFile: w('device-ca.pem', devCa.toString('pem') + '\n'),
    serverCertFile: w('server.pem', srv.toString('pem') + '\n'),
    serverKeyFile: w('server.key.pem', await exportPrivateKeyPem(srvKeys.privateKey)),
    deviceKeyPem,
    devices,
    probe: { cert: await leaf('PROBE-1'), key: deviceKeyPem },
  };
}

/** K tenants `t<i>` with segment `lan` (VNI 1000 + i), the devices round-robin over them, the probe in `probe`. */
export function registryDoc(serials: readonly string[], k: number, extra = 0): unknown {
  const tenants: Record<string, unknown> = { probe: { segments: { lan: { vni: 999, vteps: [] } } } };
  for (let i = 0; i < k + extra; i++) tenants[`t${i}`] = { segments: { lan: { vni: 1000 + i, vteps: [] } } };
  const at = '2026-01-01T00:00:00Z';
  const devices: Record<string, unknown> = { 'PROBE-1': { state: 'claimed', tenant: 'probe', updatedAt: at } };
  serials.forEach((s, i) => (devices[s] = { state: 'claimed', tenant: `t${i % k}`, updatedAt: at }));
  return { version: 1, tenants, devices, denylist: [] };
}
