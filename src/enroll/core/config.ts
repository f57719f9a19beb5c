// SPDX-License-Identifier: UNLICENSED
// `connector enroll-server --config FILE`: a JSON document in, a validated EstServerConfig out. Paths
// are relative to the config file's directory. Pure apart from the caller reading the file.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../shared/errors.js';

export interface EstServerConfig {
  host: string;
  port: number;
  /** TLS server certificate (chain) and key, issued under the DC trust anchor in the factory block. */
  tlsCertFile: string;
  tlsKeyFile: string;
  /** Factory CA certificates: simpleenroll accepts IDevIDs that chain to one of these. */
  factoryCaFiles: readonly string[];
  /** The DC device CA: signs operational certificates; the headend trusts it for clients. */
  deviceCaCertFile: string;
  deviceCaKeyFile: string;
  /** Optional intermediates above the device CA, returned by /cacerts. */
  deviceCaChainFile?: string;
  registryFile: string;
  /** JSON Lines, one record per issued certificate. */
  issuanceLogFile: string;
  certLifetimeS: number;
  retryAfterS: number;
  /** notBefore is set this far in the past, for devices whose clock runs slightly behind. */
  backdateS: number;
}

export const EST_DEFAULTS = {
  host: '0.0.0.0',
  port: 8443,
  certLifetimeS: 30 * 24 * 3600,
  retryAfterS: 60,
  backdateS: 300,
} as const;

function str(o: Record<string, unknown>, key: string, base: string, required = true): string | undefined {
  const v = o[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new ConfigError(key, 'must be a non-empty string (a file path)');
  return isAbsolute(v) ? v : resolve(base, v);
}

function int(o: Record<string, unknown>, key: string, min: number, max: number, dflt: number): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(key, `must be an integer ${min}..${max}`);
  }
  return v;
}

export function parseEstServerConfig(doc: unknown, baseDir: string): EstServerConfig {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('(root)', 'must be a JSON object');
  const o = doc as Record<string, unknown>;
  const fca = o['factoryCaFiles'];
  if (!Array.isArray(fca) || fca.length === 0 || fca.some((x) => typeof x !== 'string')) {
    throw new ConfigError('factoryCaFiles', 'must be a non-empty list of CA certificate files');
  }
  const host = o['host'] ?? EST_DEFAULTS.host;
  if (typeof host !== 'string') throw new ConfigError('host', 'must be a string');
  const chain = str(o, 'deviceCaChainFile', baseDir, false);
  return Object.freeze({
    host,
    port: int(o, 'port', 0, 65535, EST_DEFAULTS.port),
    tlsCertFile: str(o, 'tlsCertFile', baseDir) as string,
    tlsKeyFile: str(o, 'tlsKeyFile', baseDir) as string,
    factoryCaFiles: Object.freeze((fca as string[]).map((f) => (isAbsolute(f) ? f : resolve(baseDir, f)))),
    deviceCaCertFile: str(o, 'deviceCaCertFile', baseDir) as string,
    deviceCaKeyFile: str(o, 'deviceCaKeyFile', baseDir) as string,
    ...(chain ? { deviceCaChainFile: chain } : {}),
    registryFile: str(o, 'registryFile', baseDir) as string,
    issuanceLogFile: str(o, 'issuanceLogFile', baseDir) as string,
    certLifetimeS: int(o, 'certLifetimeS', 60, 398 * 24 * 3600, EST_DEFAULTS.certLifetimeS),
    retryAfterS: int(o, 'retryAfterS', 1, 86_400, EST_DEFAULTS.retryAfterS),
    backdateS: int(o, 'backdateS', 0, 86_400, EST_DEFAULTS.backdateS),
  });
}
