// SPDX-License-Identifier: UNLICENSED
// `connector headend --config FILE`: a JSON document in, a validated, frozen HeadendConfig out. Relative
// paths are resolved against the config file's directory so a config and its PEM files travel together.
// Pure apart from the caller handing in the text and the base directory.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../shared/errors.js';
import { VXLAN_UDP_PORT } from '../../shared/l2/vxlan.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface HeadendConfig {
  listen: HostPort;
  tls: { certFile: string; keyFile: string; deviceCaFile: string };
  registryFile: string;
  auditLogFile: string;
  /** null: no metrics endpoint. */
  metrics: HostPort | null;
  vxlan: { localAddress: string; port: number; vtepPort: number };
  session: {
    keepaliveMs: number;
    deadAfterMs: number;
    helloTimeoutMs: number;
    /** Bytes a session's TLS socket may hold unsent before frames to it are dropped. */
    maxBufferedBytes: number;
  };
  mac: { ageMs: number; maxEntriesPerSegment: number };
  /** IP MTU a VTEP path needs for 1514-byte inner frames: 1514 + 8 VXLAN + 8 UDP + 20 IPv4 = 1550. */
  minVtepPathMtu: number;
  headendVersion: string;
}

export const HEADEND_DEFAULTS = Object.freeze({
  listenHost: '0.0.0.0',
  listenPort: 443,
  vxlanLocalAddress: '0.0.0.0',
  keepaliveMs: 5_000,
  deadAfterMs: 15_000,
  helloTimeoutMs: 10_000,
  maxBufferedBytes: 256 * 1024,
  macAgeS: 300,
  maxEntriesPerSegment: 8_192,
  minVtepPathMtu: 1_550,
});

type Obj = Record<string, unknown>;

function obj(v: unknown, key: string): Obj {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(key, 'must be a JSON object');
  return v as Obj;
}

function str(o: Obj, key: string, path: string, dflt?: string): string {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || v === '') throw new ConfigError(path, dflt === undefined ? 'is required (a non-empty string)' : 'must be a non-empty string');
  return v;
}

function int(o: Obj, key: string, path: string, min: number, max: number, dflt?: number): number {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(path, `must be an integer from ${min} to ${max}${v === undefined ? ' (required)' : `, got ${JSON.stringify(v)}`}`);
  }
  return v;
}

function hostPort(o: Obj, path: string, dfltHost: string, dfltPort?: number): HostPort {
  return Object.freeze({ host: str(o, 'host', `${path}.host`, dfltHost), port: int(o, 'port', `${path}.port`, 0, 65_535, dfltPort) });
}

const KNOWN_KEYS = ['listen', 'tls', 'registry', 'auditLog', 'metrics', 'vxlan', 'session', 'mac', 'minVtepPathMtu', 'headendVersion'];

export function parseHeadendConfig(doc: unknown, baseDir: string): HeadendConfig {
  const root = obj(doc, '(root)');
  for (const k of Object.keys(root)) {
    if (!KNOWN_KEYS.includes(k)) throw new ConfigError(k, `unknown key; known keys are ${KNOWN_KEYS.join(', ')}`);
  }
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const tls = obj(root['tls'], 'tls');
  const vx = obj(root['vxlan'], 'vxlan');
  const sess = obj(root['session'], 'session');
  const mac = obj(root['mac'], 'mac');
  const keepaliveMs = int(sess, 'keepaliveMs', 'session.keepaliveMs', 100, 600_000, HEADEND_DEFAULTS.keepaliveMs);
  const deadAfterMs = int(sess, 'deadAfterMs', 'session.deadAfterMs', 300, 3_600_000, HEADEND_DEFAULTS.deadAfterMs);
  if (deadAfterMs <= keepaliveMs) throw new ConfigError('session.deadAfterMs', `must be larger than session.keepaliveMs (${keepaliveMs})`);
  const metricsRaw = root['metrics'];
  return Object.freeze({
    listen: hostPort(obj(root['listen'], 'listen'), 'listen', HEADEND_DEFAULTS.listenHost, HEADEND_DEFAULTS.listenPort),
    tls: Object.freeze({
      certFile: path(str(tls, 'cert', 'tls.cert')),
      keyFile: path(str(tls, 'key', 'tls.key')),
      deviceCaFile: path(str(tls, 'deviceCa', 'tls.deviceCa')),
    }),
    registryFile: path(str(root, 'registry', 'registry')),
    auditLogFile: path(str(root, 'auditLog', 'auditLog')),
    metrics: metricsRaw === null || metricsRaw === undefined ? null : hostPort(obj(metricsRaw, 'metrics'), 'metrics', '127.0.0.1'),
    vxlan: Object.freeze({
      localAddress: str(vx, 'localAddress', 'vxlan.localAddress', HEADEND_DEFAULTS.vxlanLocalAddress),
      port: int(vx, 'port', 'vxlan.port', 0, 65_535, VXLAN_UDP_PORT),
      vtepPort: int(vx, 'vtepPort', 'vxlan.vtepPort', 1, 65_535, VXLAN_UDP_PORT),
    }),
    session: Object.freeze({
      keepaliveMs,
      deadAfterMs,
      helloTimeoutMs: int(sess, 'helloTimeoutMs', 'session.helloTimeoutMs', 100, 600_000, HEADEND_DEFAULTS.helloTimeoutMs),
      maxBufferedBytes: int(sess, 'maxBufferedBytes', 'session.maxBufferedBytes', 16 * 1024, 64 * 1024 * 1024, HEADEND_DEFAULTS.maxBufferedBytes),
    }),
    mac: Object.freeze({
      ageMs: int(mac, 'ageS', 'mac.ageS', 10, 86_400, HEADEND_DEFAULTS.macAgeS) * 1_000,
      maxEntriesPerSegment: int(mac, 'maxEntriesPerSegment', 'mac.maxEntriesPerSegment', 16, 1_000_000, HEADEND_DEFAULTS.maxEntriesPerSegment),
    }),
    minVtepPathMtu: int(root, 'minVtepPathMtu', 'minVtepPathMtu', 576, 9_216, HEADEND_DEFAULTS.minVtepPathMtu),
    headendVersion: str(root, 'headendVersion', 'headendVersion', '0.1.0'),
  });
}

/** Parses config text; JSON errors become a ConfigError pointing at the file. */
export function parseHeadendConfigText(text: string, file: string, baseDir: string): HeadendConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `is not valid JSON: ${(e as Error).message}`);
  }
  return parseHeadendConfig(doc, baseDir);
}
