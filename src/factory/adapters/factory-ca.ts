// SPDX-License-Identifier: UNLICENSED
// The factory CA on disk (`connector factory init-ca`): DIR/factory-ca.cert.pem and DIR/factory-ca.key.pem
// (0600). Created once, never overwritten; loaded by the station for every unit.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorError } from '../../shared/errors.js';
import {
  certFromPem,
  createSelfSignedCa,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  type Issuer,
  x509,
} from '../../shared/pki/x509.js';

export const FACTORY_CA_CERT = 'factory-ca.cert.pem';
export const FACTORY_CA_KEY = 'factory-ca.key.pem';

export interface FactoryCaPaths {
  certFile: string;
  keyFile: string;
}

export function factoryCaPaths(dir: string): FactoryCaPaths {
  return { certFile: join(dir, FACTORY_CA_CERT), keyFile: join(dir, FACTORY_CA_KEY) };
}

export interface InitCaOptions {
  dir: string;
  commonName: string;
  now: Date;
  validityYears: number;
}

/** Creates a P-256 factory CA; refuses to overwrite an existing one. */
export async function initFactoryCa(o: InitCaOptions): Promise<{ paths: FactoryCaPaths; cert: x509.X509Certificate }> {
  const paths = factoryCaPaths(o.dir);
  if (existsSync(paths.keyFile) || existsSync(paths.certFile)) {
    throw new ConnectorError('CK_ERR_FACTORY', `a factory CA already exists in ${o.dir}; use it, or choose another --dir`);
  }
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const keys = await generateKeyPair(true);
  const notAfter = new Date(o.now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + o.validityYears);
  const cert = await createSelfSignedCa({ cn: o.commonName }, keys, o.now, notAfter, 0);
  writeFileSync(paths.keyFile, await exportPrivateKeyPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  writeFileSync(paths.certFile, cert.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
  return { paths, cert };
}

export function factoryCaExists(dir: string): boolean {
  const paths = factoryCaPaths(dir);
  return existsSync(paths.certFile) && existsSync(paths.keyFile);
}

export async function loadFactoryCa(paths: FactoryCaPaths): Promise<Issuer> {
  try {
    return {
      cert: certFromPem(readFileSync(paths.certFile, 'utf8')),
      privateKey: await importPrivateKeyPem(readFileSync(paths.keyFile, 'utf8')),
    };
  } catch (e) {
    throw new ConnectorError(
      'CK_ERR_FACTORY',
      `cannot load the factory CA (${paths.certFile}, ${paths.keyFile}): ${(e as Error).message}; run 'connector factory init-ca' first`,
      { cause: e },
    );
  }
}
