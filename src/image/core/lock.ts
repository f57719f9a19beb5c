// SPDX-License-Identifier: UNLICENSED
// The image lock file: every external input of a firmware build, pinned by version, URL and sha256 (or, for
// a publisher's checksum list, by the signature that covers it). Pure: JSON text in, a frozen model out.
import { ImageError } from './errors.js';

export type InputRole =
  | 'imagebuilder'
  | 'imagebuilder-sums'
  | 'imagebuilder-sums-sig'
  | 'node-host'
  | 'node-target'
  | 'glibc-runtime'
  | 'postject';

export const INPUT_ROLES: readonly InputRole[] = [
  'imagebuilder',
  'imagebuilder-sums',
  'imagebuilder-sums-sig',
  'node-host',
  'node-target',
  'glibc-runtime',
  'postject',
];

export interface SigningKey {
  readonly name: string;
  readonly type: 'usign';
  /** 16 hex digits, as OpenWrt publishes it. */
  readonly keyId: string;
  /** The base64 line of the public key file (`Ed` + keynum + 32-byte key). */
  readonly publicKey: string;
}

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

type Json = Record<string, unknown>;

function fail(where: string, problem: string): never {
  throw new ImageError('lock-invalid', `lock file: ${where}: ${problem}`);
}

function obj(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'must be an object');
  return v as Json;
}

function str(o: Json, key: string, where: string, re?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') fail(`${where}.${key}`, 'must be a non-empty string');
  if (re && !re.test(v)) fail(`${where}.${key}`, `"${v}" does not match ${String(re)}`);
  return v;
}

function optStr(o: Json, key: string, where: string, re?: RegExp): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, where, re);
}

function onlyKeys(o: Json, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(`${where}.${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function parseKey(name: string, v: unknown): SigningKey {
  const where = `keys.${name}`;
  const o = obj(v, where);
  onlyKeys(o, ['type', 'keyId', 'publicKey'], where);
  if (o['type'] !== 'usign') fail(`${where}.type`, 'only "usign" keys are supported');
  const keyId = str(o, 'keyId', where, /^[0-9a-f]{16}$/);
  const publicKey = str(o, 'publicKey', where, /^[A-Za-z0-9+/]{54}==?$|^[A-Za-z0-9+/]{56}$/);
  // The key id is bytes 2..10 of the decoded key; a mismatch means the two fields were pasted from
  // different keys, which would make every later signature check meaningless.
  const raw = Buffer.from(publicKey, 'base64');
  if (raw.length !== 42 || raw.subarray(0, 2).toString('latin1') !== 'Ed') {
    fail(`${where}.publicKey`, 'is not a usign Ed25519 public key (42 bytes starting "Ed")');
  }
  if (raw.subarray(2, 10).toString('hex') !== keyId) {
    fail(`${where}.keyId`, `${keyId} is not the key id inside publicKey (${raw.subarray(2, 10).toString('hex')})`);
  }
  return Object.freeze({ name, type: 'usign', keyId, publicKey });
}

function parseInput(v: unknown, i: number): LockedInput {
  const where = `inputs[${i}]`;
  const o = obj(v, where);
  onlyKeys(
    o,
    ['name', 'role', 'version', 'url', 'file', 'sha256', 'integrity', 'size', 'signedSums', 'signature', 'license', 'note'],
    where,
  );
  const name = str(o, 'name', where, NAME);
  const w = `input "${name}"`;
  const role = str(o, 'role', w) as InputRole;
  if (!INPUT_ROLES.includes(role)) fail(`${w}.role`, `"${role}" is not one of ${INPUT_ROLES.join(', ')}`);
  const url = str(o, 'url', w);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail(`${w}.url`, `"${url}" is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') fail(`${w}.url`, 'must be http(s)');
  const file = str(o, 'file', w, FILE);
  if (!decodeURIComponent(parsed.pathname).endsWith('/' + file)) fail(`${w}.file`, `"${file}" is not the last part of the URL`);
  const sha256 = optStr(o, 'sha256', w, HEX64);
  const integrity = optStr(o, 'integrity', w, /^sha512-[A-Za-z0-9+/]{86}==$/);
  const size = o['size'];
  if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0)) {
    fail(`${w}.size`, 'must be a positive integer (bytes)');
  }
  const out: {
    -readonly [K in keyof LockedInput]: LockedInput[K];
  } = { name, role, version: str(o, 'version', w), url, file };
  if (sha256 !== undefined) out.sha256 = sha256;
  if (integrity !== undefined) out.integrity = integrity;
  if (typeof size === 'number') out.size = size;
  if (o['signedSums'] !== undefined) {
    const s = obj(o['signedSums'], `${w}.signedSums`);
    onlyKeys(s, ['sums', 'sig', 'key'], `${w}.signedSums`);
    out.signedSums = Object.freeze({
      sums: str(s, 'sums', `${w}.signedSums`),
      sig: str(s, 'sig', `${w}.signedSums`),
      key: str(s, 'key', `${w}.signedSums`),
    });
  }
  if (o['signature'] !== undefined) {
    const s = obj(o['signature'], `${w}.signature`);
    onlyKeys(s, ['sig', 'key'], `${w}.signature`);
    out.signature = Object.freeze({ sig: str(s, 'sig', `${w}.signature`), key: str(s, 'key', `${w}.signature`) });
  }
  const license = optStr(o, 'license', w);
  if (license !== undefined) out.license = license;
  const note = optStr(o, 'note', w);
  if (note !== undefined) out.note = note;
  // Every byte we build from must be pinned: by its own hash, or (checksum lists) by a signature, or
  // (signatures) by being checked against a pinned key.
  if (role === 'imagebuilder-sums') {
    if (!out.signature) fail(w, 'a checksum list needs "signature" {sig, key}');
  } else if (role !== 'imagebuilder-sums-sig' && !sha256) {
    fail(`${w}.sha256`, 'is required (64 hex digits): an unpinned input cannot be verified');
  }
  return Object.freeze(out);
}

export function parseImageLock(text: string): ImageLock {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ImageError('lock-invalid', `lock file: not JSON: ${(e as Error).message}`);
  }
  const o = obj(raw, 'top level');
  onlyKeys(o, ['$comment', 'lockVersion', 'defaults', 'keys', 'inputs'], 'top level');
  if (o['lockVersion'] !== 1) fail('lockVersion', 'must be 1');
  const d = obj(o['defaults'], 'defaults');
  onlyKeys(d, ['openwrt', 'node'], 'defaults');
  const keysRaw = obj(o['keys'] ?? {}, 'keys');
  const keys: Record<string, SigningKey> = {};
  for (const [name, v] of Object.entries(keysRaw)) keys[name] = parseKey(name, v);
  if (!Array.isArray(o['inputs'])) fail('inputs', 'must be an array');
  const inputs = (o['inputs'] as unknown[]).map(parseInput);

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
  const defaults = { openwrt: str(d, 'openwrt', 'defaults'), node: str(d, 'node', 'defaults') };
  const lock: ImageLock = { lockVersion: 1, defaults: Object.freeze(defaults), keys: Object.freeze(keys), inputs: Object.freeze(inputs) };
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
  const imagebuilder = one('imagebuilder', openwrt);
  const ss = imagebuilder.signedSums;
  if (!ss) throw new ImageError('lock-invalid', `lock file: input "${imagebuilder.name}" needs "signedSums"`);
  const byName = (n: string): LockedInput => lock.inputs.find((i) => i.name === n) as LockedInput;
  const postjects = lock.inputs.filter((i) => i.role === 'postject');
  if (postjects.length !== 1) throw new ImageError('lock-invalid', 'lock file: needs exactly one "postject" input');
  const glibc = lock.inputs.filter((i) => i.role === 'glibc-runtime');
  if (glibc.length === 0) throw new ImageError('lock-invalid', 'lock file: needs the "glibc-runtime" packages');
  return Object.freeze({
    imagebuilder,
    sums: byName(ss.sums),
    sumsSig: byName(ss.sig),
    key: lock.keys[ss.key] as SigningKey,
    nodeHost: one('node-host', node),
    nodeTarget: one('node-target', node),
    glibc,
    postject: postjects[0] as LockedInput,
  });
}

export function allBuildInputs(b: BuildInputs): LockedInput[] {
  return [b.imagebuilder, b.sums, b.sumsSig, b.nodeHost, b.nodeTarget, ...b.glibc, b.postject];
}
