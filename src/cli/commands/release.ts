// SPDX-License-Identifier: UNLICENSED
// `connector release keygen|manifest|sign|verify`: Ed25519 release keys and signatures in the
// usign/signify format over a JSON release manifest (docs/ota.md).
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseCommandArgs, requireStr, str, runSubcommand, type Parsed } from '../../shared/cli/args.js';
import { ConnectorError, UsageError, isErrno } from '../../shared/errors.js';
import {
  assertUsign,
  encodeUsignPublicKey,
  encodeUsignSecretKey,
  encodeUsignSignature,
  generateUsignKeyPair,
  parseUsignPublicKey,
  parseUsignSecretKey,
  signUsign,
} from '../../shared/usign/index.js';
import { randomBytes } from 'node:crypto';
import { encodeReleaseManifest, parseReleaseManifest, type ReleaseArtifact, type ReleaseManifest } from '../../shared/ota/manifest.js';

const HELP = `usage: connector release keygen --out PREFIX [--comment TEXT]
       connector release manifest --version V --board BOARD --artifact KIND=FILE=URL[,URL...] [--artifact ...]
                                  [--min-version V] [--os-compat-version X.Y] [--notes TEXT] --out FILE
       connector release sign --key KEY.sec --manifest FILE [--out FILE.sig]
       connector release verify --pub KEY.pub [--pub KEY2.pub] --manifest FILE [--sig FILE.sig]

keygen    writes PREFIX.pub and PREFIX.sec (mode 0600, no passphrase; usable by signify -S and usign -S);
          never overwrites; prints the key id
manifest  computes sha256 and size of each artifact (KIND is agent or sysupgrade) and writes the manifest
sign      validates the manifest, then writes a usign/signify signature (default FILE.sig)
verify    checks the signature with any of the given public keys (key rotation) and validates the manifest;
          exit 0 when good, 1 otherwise
`;

async function writeNew(file: string, data: string, mode: number): Promise<void> {
  try {
    await writeFile(file, data, { flag: 'wx', mode });
  } catch (e) {
    if (isErrno(e, 'EEXIST')) throw new UsageError(`${file} already exists; refusing to overwrite a key`);
    throw new ConnectorError('CK_ERR_IO', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_IO', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function list(p: Parsed, key: string): string[] {
  const v = p.values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

async function keygen(p: Parsed): Promise<number> {
  const out = requireStr(p, 'out');
  const pair = generateUsignKeyPair({ comment: str(p, 'comment') ?? `connector release key ${basename(out)}` });
  await writeNew(`${out}.sec`, encodeUsignSecretKey(pair.secretKey, randomBytes(16)), 0o600);
  await writeNew(`${out}.pub`, encodeUsignPublicKey(pair.publicKey), 0o644);
  process.stdout.write(`key id ${pair.publicKey.keyId}\npublic key ${out}.pub\nsecret key ${out}.sec (keep offline)\n`);
  return 0;
}

async function manifest(p: Parsed): Promise<number> {
  const out = requireStr(p, 'out');
  const specs = list(p, 'artifact');
  if (specs.length === 0) throw new UsageError('--artifact KIND=FILE=URL is required at least once');
  const artifacts: ReleaseArtifact[] = [];
  for (const spec of specs) {
    const [kind, file, urls, ...rest] = spec.split('=');
    if (!kind || !file || !urls || rest.length > 0) throw new UsageError(`--artifact "${spec}": expected KIND=FILE=URL[,URL...]`);
    if (kind !== 'agent' && kind !== 'sysupgrade') throw new UsageError(`--artifact "${spec}": KIND must be agent or sysupgrade`);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e) {
      throw new ConnectorError('CK_ERR_IO', `cannot read artifact ${file}: ${(e as Error).message}`, { cause: e });
    }
    artifacts.push({ kind, name: basename(file), sha256: createHash('sha256').update(data).digest('hex'), size: data.length, urls: urls.split(',') });
  }
  const minVersion = str(p, 'min-version');
  const osCompatVersion = str(p, 'os-compat-version');
  const notes = str(p, 'notes');
  const draft: ReleaseManifest = {
    schema: 1,
    version: requireStr(p, 'version'),
    board: requireStr(p, 'board'),
    compat: { ...(minVersion ? { minVersion } : {}), ...(osCompatVersion ? { osCompatVersion } : {}) },
    createdAt: new Date().toISOString(),
    ...(notes ? { notes } : {}),
    artifacts,
  };
  const text = encodeReleaseManifest(parseReleaseManifest(JSON.stringify(draft)));
  await writeFile(out, text);
  process.stdout.write(`wrote ${out} (version ${draft.version}, ${artifacts.length} artifact(s))\n`);
  return 0;
}

async function sign(p: Parsed): Promise<number> {
  const file = requireStr(p, 'manifest');
  const bytes = Buffer.from(await readText(file, 'manifest'));
  const m = parseReleaseManifest(bytes);
  const key = parseUsignSecretKey(await readText(requireStr(p, 'key'), 'secret key'));
  const out = str(p, 'out') ?? `${file}.sig`;
  await writeFile(out, encodeUsignSignature(signUsign(bytes, key, `verify with ${key.keyId}.pub (connector release ${m.version})`)));
  process.stdout.write(`signed ${file} (version ${m.version}) with key ${key.keyId}: ${out}\n`);
  return 0;
}

async function verify(p: Parsed): Promise<number> {
  const file = requireStr(p, 'manifest');
  const pubs = list(p, 'pub');
  if (pubs.length === 0) throw new UsageError('--pub KEY.pub is required (repeat it for each trusted key slot)');
  const keys = await Promise.all(pubs.map(async (f) => parseUsignPublicKey(await readText(f, 'public key'))));
  const bytes = await readFile(file).catch((e: unknown) => {
    throw new ConnectorError('CK_ERR_IO', `cannot read manifest ${file}: ${(e as Error).message}`, { cause: e });
  });
  const sigFile = str(p, 'sig') ?? `${file}.sig`;
  await stat(sigFile).catch(() => {
    throw new ConnectorError('CK_ERR_OTA_BAD_SIGNATURE', `no signature ${sigFile}: unsigned releases are refused`);
  });
  const keyId = assertUsign(bytes, await readText(sigFile, 'signature'), keys);
  const m = parseReleaseManifest(bytes);
  process.stdout.write(`ok: ${file} signed by key ${keyId}; release ${m.version} for ${m.board}, ${m.artifacts.map((a) => `${a.kind} ${a.name} (${a.size} bytes)`).join(', ')}\n`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, {
    out: { type: 'string' },
    comment: { type: 'string' },
    key: { type: 'string' },
    manifest: { type: 'string' },
    sig: { type: 'string' },
    pub: { type: 'string', multiple: true },
    version: { type: 'string' },
    board: { type: 'string' },
    artifact: { type: 'string', multiple: true },
    'min-version': { type: 'string' },
    'os-compat-version': { type: 'string' },
    notes: { type: 'string' },
  });
  return runSubcommand('release', p, HELP, { keygen, manifest, sign, verify });
}
