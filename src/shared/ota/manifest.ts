// SPDX-License-Identifier: UNLICENSED
// The release manifest: the one object we sign. Devices verify the signature over the exact bytes they
// received, then parse them here; nothing else about a release is trusted. Pure: bytes in, typed value out.
import { ConnectorError } from '../errors.js';
import {
  array,
  formatPath,
  literal,
  object,
  oneOf,
  optional,
  parseJsonText,
  parseWith,
  positiveInteger,
  refine,
  section,
  string,
} from '../schema/schema.js';
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

export const MAX_MANIFEST_BYTES = 64 * 1024;

function bad(path: string, problem: string): ConnectorError {
  return new ConnectorError('CK_ERR_OTA_MANIFEST', `release manifest ${path}: ${problem}`);
}

const version = refine(string(), (v) => (isVersion(v) ? undefined : `"${v}" is not a version like 1.2.3`));

// Unknown keys are ignored, not refused: a manifest is a message from the release tool to devices that
// may run an older agent, and the signature, not the key set, is what makes it trustworthy.
const tolerant = { unknownKeys: 'ignore' } as const;

const ARTIFACT_SCHEMA = object(
  {
    kind: oneOf(ARTIFACT_KINDS),
    name: refine(string({ pattern: /^[A-Za-z0-9._-]{1,128}$/, hint: 'a plain file name' }), (n) =>
      n === '.' || n === '..' ? 'must be a file name' : undefined,
    ),
    sha256: string({ pattern: /^[0-9a-f]{64}$/, hint: '64 lower-case hex digits' }),
    size: positiveInteger('bytes'),
    urls: array(string({ pattern: /^https:\/\/[^\s]+$/, hint: 'an https:// URL' }), { nonEmpty: true }),
  },
  tolerant,
);

const MANIFEST_SCHEMA_V1 = object(
  {
    schema: literal(MANIFEST_SCHEMA),
    version,
    board: string({ pattern: /^[a-z0-9][a-z0-9,._-]{0,127}$/, hint: 'an OpenWrt board name like friendlyarm,nanopi-r3s' }),
    createdAt: refine(string(), (t) => (Number.isNaN(Date.parse(t)) ? 'must be an ISO 8601 time' : undefined)),
    compat: section(
      { minVersion: optional(version), osCompatVersion: optional(string({ pattern: /^\d+\.\d+$/, hint: 'a compat version like 1.1' })) },
      tolerant,
    ),
    artifacts: refine(array(ARTIFACT_SCHEMA, { nonEmpty: true }), (as) => {
      const twice = ARTIFACT_KINDS.find((kind) => as.filter((a) => a.kind === kind).length > 1);
      return twice ? `more than one "${twice}" artifact` : undefined;
    }),
    notes: optional(string({ allowEmpty: true })),
  },
  tolerant,
);

/** Parses and validates manifest bytes (or text); throws CK_ERR_OTA_MANIFEST naming the bad field. */
export function parseReleaseManifest(input: Uint8Array | string): ReleaseManifest {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES)
    throw new ConnectorError('CK_ERR_OTA_MANIFEST', `release manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const raw = parseJsonText(text, (problem, cause) => {
    throw new ConnectorError('CK_ERR_OTA_MANIFEST', `release manifest ${problem}`, { cause });
  });
  const m = parseWith(MANIFEST_SCHEMA_V1, raw, (i) => {
    throw bad(formatPath(i.path), i.problem);
  });
  const compat: ReleaseCompat = Object.freeze({
    ...(m.compat.minVersion !== undefined ? { minVersion: m.compat.minVersion } : {}),
    ...(m.compat.osCompatVersion !== undefined ? { osCompatVersion: m.compat.osCompatVersion } : {}),
  });
  // Key order is the encoding's (encodeReleaseManifest), so parse(encode(m)) round-trips byte for byte.
  return Object.freeze({
    schema: MANIFEST_SCHEMA,
    version: m.version,
    board: m.board,
    compat,
    createdAt: m.createdAt,
    ...(m.notes !== undefined ? { notes: m.notes } : {}),
    artifacts: Object.freeze(
      m.artifacts.map((a) => Object.freeze({ kind: a.kind, name: a.name, sha256: a.sha256, size: a.size, urls: Object.freeze(a.urls) })),
    ),
  });
}

/** Stable text for signing: two-space indented JSON with a trailing newline (signify signs files). */
export function encodeReleaseManifest(m: ReleaseManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}
