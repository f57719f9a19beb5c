// SPDX-License-Identifier: UNLICENSED
// The image lock file: every external input of a firmware build, pinned by version, URL and sha256 (or, for
// a publisher's checksum list, by the signature that covers it). Pure: JSON text in, a frozen model out.
import {
  array,
  formatPath,
  isRecord,
  literal,
  object,
  oneOf,
  optional,
  parseJsonText,
  parseWith,
  positiveInteger,
  record,
  refine,
  string,
  type Infer,
  type Path,
} from '../../shared/schema/schema.js';
import { ImageError } from './errors.js';
import { seriesOf, type OpenWrtSeries } from './series.js';

export type InputRole =
  'imagebuilder' | 'imagebuilder-sums' | 'imagebuilder-sums-sig' | 'node-host' | 'node-target' | 'glibc-runtime' | 'postject';

export const INPUT_ROLES: readonly InputRole[] = [
  'imagebuilder',
  'imagebuilder-sums',
  'imagebuilder-sums-sig',
  'node-host',
  'node-target',
  'glibc-runtime',
  'postject',
];

export interface UsignKey {
  readonly name: string;
  readonly type: 'usign';
  /** 16 hex digits, as OpenWrt publishes it. */
  readonly keyId: string;
  /** The base64 line of the public key file (`Ed` + keynum + 32-byte key). */
  readonly publicKey: string;
}

export interface GpgKey {
  readonly name: string;
  readonly type: 'gpg';
  /** Primary key fingerprint, 40 upper-case hex digits: what a good signature must chain to. */
  readonly fingerprint: string;
  /** The armored public key, relative to the lock file's directory. */
  readonly keyFile: string;
}

/** A publisher key pinned in the lock file: usign (OpenWrt 24.10) or OpenPGP (OpenWrt 25.12). */
export type SigningKey = UsignKey | GpgKey;

export interface LockedInput {
  readonly name: string;
  readonly role: InputRole;
  readonly version: string;
  readonly url: string;
  /** The file name the publisher uses; also the last part of the mirror and cache path. */
  readonly file: string;
  /** Lower-case hex. Absent only for a checksum list or signature, which its signature covers instead. */
  readonly sha256?: string;
  /** npm's Subresource Integrity string (sha512-...), checked in addition to sha256 when present. */
  readonly integrity?: string;
  readonly size?: number;
  /** This file's checksum list is `sums` (an input name) signed by `sig` (an input name) with `key`. */
  readonly signedSums?: { readonly sums: string; readonly sig: string; readonly key: string };
  /** For a checksum list: the signature input and key that cover it. */
  readonly signature?: { readonly sig: string; readonly key: string };
  readonly license?: string;
  readonly note?: string;
}

export interface ImageLock {
  readonly lockVersion: 1;
  readonly defaults: { readonly openwrt: string; readonly node: string };
  readonly keys: Readonly<Record<string, SigningKey>>;
  readonly inputs: readonly LockedInput[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const NAME = /^[a-z0-9][a-z0-9._+-]*$/;
const FILE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

function fail(where: string, problem: string): never {
  throw new ImageError('lock-invalid', `lock file: ${where}: ${problem}`);
}

function urlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? undefined : 'must be http(s)';
}

const KEY_SCHEMA = object({
  type: oneOf(['usign', 'gpg'] as const),
  keyId: optional(string({ pattern: /^[0-9a-f]{16}$/ })),
  publicKey: optional(string({ pattern: /^[A-Za-z0-9+/]{54}==?$|^[A-Za-z0-9+/]{56}$/ })),
  fingerprint: optional(string({ pattern: /^[0-9A-F]{40}$/, hint: '40 upper-case hex digits' })),
  keyFile: optional(
    string({ pattern: /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]*\.asc$/, hint: 'an .asc path below the lock file directory' }),
  ),
});

const INPUT_SCHEMA = object({
  name: string({ pattern: NAME }),
  role: oneOf(INPUT_ROLES),
  url: refine(string(), urlProblem),
  file: string({ pattern: FILE }),
  sha256: optional(string({ pattern: HEX64 })),
  integrity: optional(string({ pattern: /^sha512-[A-Za-z0-9+/]{86}==$/ })),
  size: optional(positiveInteger('bytes')),
  version: string(),
  signedSums: optional(object({ sums: string(), sig: string(), key: string() })),
  signature: optional(object({ sig: string(), key: string() })),
  license: optional(string()),
  note: optional(string()),
});

const LOCK_SCHEMA = object(
  {
    lockVersion: literal(1),
    defaults: object({ openwrt: string(), node: string() }),
    keys: optional(record(KEY_SCHEMA), {}),
    inputs: array(INPUT_SCHEMA),
  },
  { ignoredKeys: ['$comment'] },
);

/**
 * Paths as people read the lock file: an input by its name once it has a valid one (`input "x".sha256`),
 * the top level as `top level`.
 */
function where(raw: unknown, path: Path): string {
  if (path.length === 0) return 'top level';
  const [first, i, ...rest] = path;
  const entries = isRecord(raw) ? raw['inputs'] : undefined;
  const entry: unknown = first === 'inputs' && typeof i === 'number' && Array.isArray(entries) ? entries[i] : undefined;
  const name = isRecord(entry) ? entry['name'] : undefined;
  if (typeof name !== 'string' || !NAME.test(name)) return formatPath(path);
  return rest.length === 0 ? `input "${name}"` : `input "${name}".${formatPath(rest)}`;
}

function checkKey(name: string, k: Infer<typeof KEY_SCHEMA>): SigningKey {
  if (k.type === 'gpg') {
    if (!k.fingerprint) fail(`keys.${name}.fingerprint`, 'is required for a "gpg" key');
    if (!k.keyFile) fail(`keys.${name}.keyFile`, 'is required for a "gpg" key');
    if (k.keyId !== undefined || k.publicKey !== undefined)
      fail(`keys.${name}`, 'a "gpg" key has fingerprint and keyFile, not keyId/publicKey');
    return Object.freeze({ name, type: 'gpg', fingerprint: k.fingerprint, keyFile: k.keyFile });
  }
  if (!k.keyId) fail(`keys.${name}.keyId`, 'is required for a "usign" key');
  if (!k.publicKey) fail(`keys.${name}.publicKey`, 'is required for a "usign" key');
  // The key id is bytes 2..10 of the decoded key; a mismatch means the two fields were pasted from
  // different keys, which would make every later signature check meaningless.
  const raw = Buffer.from(k.publicKey, 'base64');
  if (raw.length !== 42 || raw.subarray(0, 2).toString('latin1') !== 'Ed') {
    fail(`keys.${name}.publicKey`, 'is not a usign Ed25519 public key (42 bytes starting "Ed")');
  }
  if (raw.subarray(2, 10).toString('hex') !== k.keyId) {
    fail(`keys.${name}.keyId`, `${k.keyId} is not the key id inside publicKey (${raw.subarray(2, 10).toString('hex')})`);
  }
  return Object.freeze({ name, type: 'usign', keyId: k.keyId, publicKey: k.publicKey });
}

function checkInput(i: Infer<typeof INPUT_SCHEMA>): LockedInput {
  const w = `input "${i.name}"`;
  if (!decodeURIComponent(new URL(i.url).pathname).endsWith('/' + i.file)) fail(`${w}.file`, `"${i.file}" is not the last part of the URL`);
  // Every byte we build from must be pinned: by its own hash, or (checksum lists) by a signature, or
  // (signatures) by being checked against a pinned key.
  if (i.role === 'imagebuilder-sums') {
    if (!i.signature) fail(w, 'a checksum list needs "signature" {sig, key}');
  } else if (i.role !== 'imagebuilder-sums-sig' && !i.sha256) {
    fail(`${w}.sha256`, 'is required (64 hex digits): an unpinned input cannot be verified');
  }
  const out: { -readonly [K in keyof LockedInput]: LockedInput[K] } = {
    name: i.name,
    role: i.role,
    version: i.version,
    url: i.url,
    file: i.file,
  };
  if (i.sha256 !== undefined) out.sha256 = i.sha256;
  if (i.integrity !== undefined) out.integrity = i.integrity;
  if (i.size !== undefined) out.size = i.size;
  if (i.signedSums) out.signedSums = Object.freeze(i.signedSums);
  if (i.signature) out.signature = Object.freeze(i.signature);
  if (i.license !== undefined) out.license = i.license;
  if (i.note !== undefined) out.note = i.note;
  return Object.freeze(out);
}

export function parseImageLock(text: string): ImageLock {
  const raw = parseJsonText(text, (problem, cause) => {
    throw new ImageError('lock-invalid', `lock file: ${problem}`, { cause });
  });
  const doc = parseWith(LOCK_SCHEMA, raw, (i) => fail(where(raw, i.path), i.problem));
  const keys: Record<string, SigningKey> = {};
  for (const [name, k] of Object.entries(doc.keys)) keys[name] = checkKey(name, k);
  const inputs = doc.inputs.map(checkInput);

  const byName = new Map<string, LockedInput>();
  for (const inp of inputs) {
    if (byName.has(inp.name)) fail(`input "${inp.name}"`, 'name used twice');
    byName.set(inp.name, inp);
  }
  const paths = new Map<string, string>();
  for (const inp of inputs) {
    const p = mirrorPath(inp);
    const other = paths.get(p);
    if (other) fail(`input "${inp.name}"`, `has the same URL path as "${other}"`);
    paths.set(p, inp.name);
  }
  const needRole = (ref: string, role: InputRole, where: string): void => {
    const t = byName.get(ref);
    if (!t) fail(where, `refers to input "${ref}", which is not in the lock file`);
    if (t.role !== role) fail(where, `refers to "${ref}", whose role is ${t.role}, not ${role}`);
  };
  const needKey = (ref: string, where: string): void => {
    if (!keys[ref]) fail(where, `refers to key "${ref}", which is not in "keys"`);
  };
  for (const inp of inputs) {
    if (inp.signedSums) {
      needRole(inp.signedSums.sums, 'imagebuilder-sums', `input "${inp.name}".signedSums.sums`);
      needRole(inp.signedSums.sig, 'imagebuilder-sums-sig', `input "${inp.name}".signedSums.sig`);
      needKey(inp.signedSums.key, `input "${inp.name}".signedSums.key`);
    }
    if (inp.signature) {
      needRole(inp.signature.sig, 'imagebuilder-sums-sig', `input "${inp.name}".signature.sig`);
      needKey(inp.signature.key, `input "${inp.name}".signature.key`);
    }
  }
  const defaults = Object.freeze({ ...doc.defaults });
  const lock: ImageLock = { lockVersion: 1, defaults, keys: Object.freeze(keys), inputs: Object.freeze(inputs) };
  pickInputs(lock, defaults.openwrt, defaults.node); // the defaults must name a complete set
  return Object.freeze(lock);
}

/** Where an input lives below a mirror or cache directory: host + URL path, as `wget -x` lays it out. */
export function mirrorPath(input: Pick<LockedInput, 'url'>): string {
  const u = new URL(input.url);
  return `${u.host}${decodeURIComponent(u.pathname)}`;
}

export interface BuildInputs {
  readonly imagebuilder: LockedInput;
  readonly sums: LockedInput;
  readonly sumsSig: LockedInput;
  readonly key: SigningKey;
  /** What differs in this release's series (feeds file, package manager, image signing). */
  readonly series: OpenWrtSeries;
  readonly nodeHost: LockedInput;
  readonly nodeTarget: LockedInput;
  readonly glibc: readonly LockedInput[];
  readonly postject: LockedInput;
}

/** Picks the inputs of one build: one OpenWrt release and one Node version. */
export function pickInputs(lock: ImageLock, openwrt: string, node: string): BuildInputs {
  const one = (role: InputRole, version: string): LockedInput => {
    const found = lock.inputs.filter((i) => i.role === role && i.version === version);
    if (found.length !== 1) {
      const have = [...new Set(lock.inputs.filter((i) => i.role === role).map((i) => i.version))].join(', ') || 'none';
      throw new ImageError(
        'lock-invalid',
        `lock file: needs exactly one "${role}" input for version ${version}, found ${found.length} (versions in the lock file: ${have})`,
      );
    }
    return found[0] as LockedInput;
  };
  const series = seriesOf(openwrt);
  const imagebuilder = one('imagebuilder', openwrt);
  const ss = imagebuilder.signedSums;
  if (!ss) throw new ImageError('lock-invalid', `lock file: input "${imagebuilder.name}" needs "signedSums"`);
  const byName = (n: string): LockedInput => lock.inputs.find((i) => i.name === n) as LockedInput;
  const key = lock.keys[ss.key] as SigningKey;
  const want = series.sumsSignature;
  if (key.type !== want.keyType || byName(ss.sig).file !== want.file) {
    throw new ImageError(
      'lock-invalid',
      `lock file: input "${imagebuilder.name}": OpenWrt ${series.series} signs sha256sums as ${want.file} with a ${want.keyType} key; ` +
        `the lock file pairs ${byName(ss.sig).file} with ${key.type} key "${key.name}"`,
    );
  }
  const postjects = lock.inputs.filter((i) => i.role === 'postject');
  if (postjects.length !== 1) throw new ImageError('lock-invalid', 'lock file: needs exactly one "postject" input');
  const glibc = lock.inputs.filter((i) => i.role === 'glibc-runtime');
  if (glibc.length === 0) throw new ImageError('lock-invalid', 'lock file: needs the "glibc-runtime" packages');
  return Object.freeze({
    imagebuilder,
    sums: byName(ss.sums),
    sumsSig: byName(ss.sig),
    key,
    series,
    nodeHost: one('node-host', node),
    nodeTarget: one('node-target', node),
    glibc,
    postject: postjects[0] as LockedInput,
  });
}

export function allBuildInputs(b: BuildInputs): LockedInput[] {
  return [b.imagebuilder, b.sums, b.sumsSig, b.nodeHost, b.nodeTarget, ...b.glibc, b.postject];
}
