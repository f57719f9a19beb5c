// SPDX-License-Identifier: UNLICENSED
// Test PKI and an in-process EST server on 127.0.0.1:0: factory CA, DC trust anchor (signs the EST
// server certificate), DC device CA (signs operational certificates), a registry with one tenant.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/shared/log.js';
import type { Issuer } from '../../../src/shared/pki/x509.js';
import { createTestPki } from '../../helpers/pki.js';
import { writeRegistryFile, updateRegistryFile } from '../../../src/shared/registry/registry-file.js';
import { claimDevice, importAllowlist, parseRegistry, revokeDevice } from '../../../src/shared/registry/registry.js';
import { initFactoryCa, loadFactoryCa, factoryCaPaths } from '../../../src/factory/adapters/factory-ca.js';
import { issueIdevid, type Idevid } from '../../../src/factory/core/idevid.js';
import { parseEstServerConfig, type EstServerConfig } from '../../../src/enroll/core/config.js';
import { startEnrollServer, type EstServer } from '../../../src/enroll/main.js';
import { certFingerprint } from '../../../src/shared/pki/x509.js';

export interface EstFixture {
  dir: string;
  factoryCa: Issuer;
  factoryCaFile: string;
  anchorPem: string;
  anchorFile: string;
  deviceCaPem: string;
  registryFile: string;
  issuanceLogFile: string;
  config: EstServerConfig;
  server: EstServer;
  /** A fresh IDevID from the factory CA, registered as 'allowed' in the registry. */
  idevid(serial: string, opts?: { register?: boolean }): Promise<Idevid>;
  claim(serial: string): Promise<void>;
  revoke(serial: string): Promise<void>;
  /** Wall clock the server uses; tests may move it. */
  setNow(d: Date): void;
  close(): Promise<void>;
}

/** The EST server's JSON config for a fixture directory (paths relative to it), as an operator writes it. */
export const EST_CONFIG_DOC = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  tlsCertFile: 'server.cert.pem',
  tlsKeyFile: 'server.key.pem',
  factoryCaFiles: ['factory/factory-ca.cert.pem'],
  deviceCaCertFile: 'device-ca.pem',
  deviceCaKeyFile: 'device-ca.key.pem',
  registryFile: 'registry.json',
  issuanceLogFile: 'issued.jsonl',
});

export async function createEstFixture(opts: { lifetimeS?: number; retryAfterS?: number; metrics?: boolean } = {}): Promise<EstFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ck-est-'));
  const now = new Date();
  await initFactoryCa({
    dir: join(dir, 'factory'),
    commonName: 'Test Factory CA',
    now: new Date(now.getTime() - 86_400_000),
    validityYears: 20,
  });
  const factoryCa = await loadFactoryCa(factoryCaPaths(join(dir, 'factory')));
  // The DC CA is the trust anchor (signs the EST server certificate); the device CA signs what EST issues.
  const pki = await createTestPki(dir, { caNames: { dc: 'Test DC Anchor', device: 'Test DC Device CA' } });
  const files = { registry: join(dir, 'registry.json'), log: join(dir, 'issued.jsonl') };
  writeRegistryFile(
    files.registry,
    parseRegistry({ version: 1, tenants: { acme: { segments: { lan: { vni: 1001, vteps: ['10.0.0.1'] } } } }, devices: {}, denylist: [] }),
  );
  const config = parseEstServerConfig(
    {
      ...EST_CONFIG_DOC,
      certLifetimeS: opts.lifetimeS ?? 30 * 86_400,
      retryAfterS: opts.retryAfterS ?? 1,
      ...(opts.metrics ? { metrics: { host: '127.0.0.1', port: 0 } } : {}),
    },
    dir,
  );
  let clock: Date | undefined;
  const server = await startEnrollServer(config, { log: silentLogger, now: () => clock ?? new Date() });
  return {
    dir,
    factoryCa,
    factoryCaFile: join(dir, 'factory', 'factory-ca.cert.pem'),
    anchorPem: pki.dcCa.pem,
    anchorFile: pki.dcCa.file,
    deviceCaPem: pki.deviceCa.pem,
    registryFile: files.registry,
    issuanceLogFile: files.log,
    config,
    server,
    async idevid(serial, o = {}) {
      const id = await issueIdevid(factoryCa, serial, '1.0', new Date());
      if (o.register !== false) {
        await updateRegistryFile(files.registry, (r) =>
          importAllowlist(r, [{ serial, batch: 'b1', idevidFingerprint: certFingerprint(id.cert) }], new Date()),
        );
      }
      return id;
    },
    async claim(serial) {
      await updateRegistryFile(files.registry, (r) => claimDevice(r, serial, 'acme', new Date()));
    },
    async revoke(serial) {
      await updateRegistryFile(files.registry, (r) => revokeDevice(r, serial, new Date()));
    },
    setNow(d) {
      clock = d;
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
