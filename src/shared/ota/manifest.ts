// SPDX-License-Identifier: UNLICENSED
// The release manifest: the one object we sign. Devices verify the signature over the exact bytes they
// received, then parse them here; nothing else about a release is trusted. Pure: bytes in, typed value out.
import { ConnectorError } from '../errors.js';
import { isVersion } from './version.js';

export const MANIFEST_SCHEMA = 1;
export type ArtifactKind = 'agent' | 'sysupgrade';
export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['agent', 'sysupgrade'];

export interface ReleaseArtifact {
  readonly kind: ArtifactKind;
  /** File name used on the device (download cache, slot contents); no directories. */
  readonly name: string;
  /** Lower-case hex SHA-256 of the whole file. */
  readonly sha256: string;
  readonly size: number;
  /** Tried in order; https only. */
  readonly urls: readonly string[];
}

export interface ReleaseCompat {
  /** The device's running agent version must be at least this. */
  readonly minVersion?: string;
  /** For sysupgrade artifacts: the device's OpenWrt compat_version must equal this. */
  readonly osCompatVersion?: string;
}

export interface ReleaseManifest {
  readonly schema: typeof MANIFEST_SCHEMA;
  readonly version: string;
  /** OpenWrt board name, e.g. "friendlyarm,nanopi-r3s" (`ubus call system board` .board_name). */
  readonly board: string;
  readonly compat: ReleaseCompat;
  readonly createdAt: string;
  readonly notes?: string;
  readonly artifacts: readonly ReleaseArtifact[];
}

const MAX_MANIFEST_BYTES = 64 * 1024;

function bad(path: string, problem: string): ConnectorError {
  return new ConnectorError('CK_ERR_OTA_MANIFEST', `release manifest ${path}: ${problem}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, path: string, re?: RegExp, hint?: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw bad(`${path}${key}`, 'must be a non-empty string');
  if (re && !re.test(v)) throw bad(`${path}${key}`, `"${v}" is invalid${hint ? `: ${hint}` : ''}`);
  return v;
}

function optVersion(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${path}${key}`, 'must be a string');
  return checkVersion(v, `${path}${key}`);
}

function checkVersion(v: string, path: string): string {
  if (!isVersion(v)) throw bad(path, `"${v}" is not a version like 1.2.3`);
  return v;
}

function parseArtifact(raw: unknown, i: number): ReleaseArtifact {
  const path = `artifacts[${i}].`;
  if (!isRecord(raw)) throw bad(`artifacts[${i}]`, 'must be an object');
  const kind = raw['kind'];
  if (kind !== 'agent' && kind !== 'sysupgrade') throw bad(`${path}kind`, 'must be "agent" or "sysupgrade"');
  const name = str(raw, 'name', path, /^[A-Za-z0-9._-]{1,128}$/, 'a plain file name');
  if (name === '.' || name === '..') throw bad(`${path}name`, 'must be a file name');
  const sha256 = str(raw, 'sha256', path, /^[0-9a-f]{64}$/, '64 lower-case hex digits');
  const size = raw['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw bad(`${path}size`, 'must be a positive integer (bytes)');
  const urls = raw['urls'];
  if (!Array.isArray(urls) || urls.length === 0) throw bad(`${path}urls`, 'must be a non-empty array');
  for (const [j, u] of urls.entries()) {
    if (typeof u !== 'string' || !/^https:\/\/[^\s]+$/.test(u)) throw bad(`${path}urls[${j}]`, 'must be an https:// URL');
  }
  return Object.freeze({ kind, name, sha256, size, urls: Object.freeze([...(urls as string[])]) });
}

/** Parses and validates manifest bytes (or text); throws CK_ERR_OTA_MANIFEST naming the bad field. */
export function parseReleaseManifest(input: Uint8Array | string): ReleaseManifest {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) throw bad('', `larger than ${MAX_MANIFEST_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConnectorError('CK_ERR_OTA_MANIFEST', `release manifest is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isRecord(raw)) throw bad('', 'must be a JSON object');
  if (raw['schema'] !== MANIFEST_SCHEMA) throw bad('schema', `must be ${MANIFEST_SCHEMA}`);
  const version = checkVersion(str(raw, 'version', ''), 'version');
  const board = str(raw, 'board', '', /^[a-z0-9][a-z0-9,._-]{0,127}$/, 'an OpenWrt board name like friendlyarm,nanopi-r3s');
  const createdAt = str(raw, 'createdAt', '');
  if (Number.isNaN(Date.parse(createdAt))) throw bad('createdAt', 'must be an ISO 8601 time');
  const compatRaw = raw['compat'] ?? {};
  if (!isRecord(compatRaw)) throw bad('compat', 'must be an object');
  const minVersion = optVersion(compatRaw, 'minVersion', 'compat.');
  const osCompatVersion = compatRaw['osCompatVersion'] === undefined ? undefined : str(compatRaw, 'osCompatVersion', 'compat.', /^\d+\.\d+$/, 'like 1.1');
  const artifactsRaw = raw['artifacts'];
  if (!Array.isArray(artifactsRaw) || artifactsRaw.length === 0) throw bad('artifacts', 'must be a non-empty array');
  const artifacts = artifactsRaw.map(parseArtifact);
  for (const kind of ARTIFACT_KINDS) {
    if (artifacts.filter((a) => a.kind === kind).length > 1) throw bad('artifacts', `more than one "${kind}" artifact`);
  }
  const notes = raw['notes'];
  if (notes !== undefined && typeof notes !== 'string') throw bad('notes', 'must be a string');
  const compat: ReleaseCompat = Object.freeze({
    ...(minVersion !== undefined ? { minVersion } : {}),
    ...(osCompatVersion !== undefined ? { osCompatVersion } : {}),
  });
  return Object.freeze({
    schema: MANIFEST_SCHEMA,
    version,
    board,
    compat,
    createdAt,
    ...(notes !== undefined ? { notes } : {}),
    artifacts: Object.freeze(artifacts),
  });
}

/** Stable text for signing: two-space indented JSON with a trailing newline (signify signs files). */
export function encodeReleaseManifest(m: ReleaseManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}
