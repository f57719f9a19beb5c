// SPDX-License-Identifier: UNLICENSED
// `connector enroll-server --config FILE`: a JSON document in, a validated EstServerConfig out. Paths
// are relative to the config file's directory; unknown keys are refused. Pure apart from the caller reading the file.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../shared/errors.js';
import { array, formatPath, integer, nullable, object, optional, parseWith, string, type SchemaIssue } from '../../shared/schema/schema.js';
import { registrySourceField, resolveRegistrySource, type RegistrySource } from '../../shared/registry/source.js';

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
  registry: RegistrySource;
  /** JSON Lines, one record per issued certificate. */
  issuanceLogFile: string;
  certLifetimeS: number;
  retryAfterS: number;
  /** notBefore is set this far in the past, for devices whose clock runs slightly behind. */
  backdateS: number;
  /** GET /metrics (the guard's refusals) on the management network; null: off. */
  metrics: { host: string; port: number } | null;
}

export const EST_DEFAULTS = {
  host: '0.0.0.0',
  port: 8443,
  certLifetimeS: 30 * 24 * 3600,
  retryAfterS: 60,
  backdateS: 300,
} as const;

const file = () => string({ hint: 'a file path' });

/** The document as written (docs/provisioning.md); paths are resolved against the config's directory after. */
const EST_SCHEMA = object({
  host: optional(string({ allowEmpty: true }), EST_DEFAULTS.host),
  port: optional(integer(0, 65_535), EST_DEFAULTS.port),
  tlsCertFile: file(),
  tlsKeyFile: file(),
  factoryCaFiles: array(file(), { nonEmpty: true }),
  deviceCaCertFile: file(),
  deviceCaKeyFile: file(),
  deviceCaChainFile: optional(file()),
  registryFile: registrySourceField(),
  issuanceLogFile: file(),
  certLifetimeS: optional(integer(60, 398 * 24 * 3600), EST_DEFAULTS.certLifetimeS),
  retryAfterS: optional(integer(1, 86_400), EST_DEFAULTS.retryAfterS),
  backdateS: optional(integer(0, 86_400), EST_DEFAULTS.backdateS),
  metrics: optional(nullable(object({ host: optional(string(), '127.0.0.1'), port: integer(0, 65_535) })), null),
});

const fail = (i: SchemaIssue): never => {
  throw new ConfigError(formatPath(i.path), i.problem);
};

export function parseEstServerConfig(doc: unknown, baseDir: string): EstServerConfig {
  const c = parseWith(EST_SCHEMA, doc, fail);
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  return Object.freeze({
    host: c.host,
    port: c.port,
    tlsCertFile: path(c.tlsCertFile),
    tlsKeyFile: path(c.tlsKeyFile),
    factoryCaFiles: Object.freeze(c.factoryCaFiles.map(path)),
    deviceCaCertFile: path(c.deviceCaCertFile),
    deviceCaKeyFile: path(c.deviceCaKeyFile),
    ...(c.deviceCaChainFile !== undefined ? { deviceCaChainFile: path(c.deviceCaChainFile) } : {}),
    registry: resolveRegistrySource(c.registryFile, baseDir),
    issuanceLogFile: path(c.issuanceLogFile),
    certLifetimeS: c.certLifetimeS,
    retryAfterS: c.retryAfterS,
    backdateS: c.backdateS,
    metrics: c.metrics === null ? null : Object.freeze(c.metrics),
  });
}
