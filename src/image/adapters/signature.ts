// SPDX-License-Identifier: UNLICENSED
// Checking a publisher's signature over a checksum list: usign (OpenWrt 24.10's sha256sums.sig) or
// OpenPGP (25.12's sha256sums.asc, checked by gpgv against the one key the lock file pins). The usign
// check is a port so the build can use the kit's own verifier (src/shared/usign) and tests can
// cross-check with stock signify.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { exec } from '../../shared/exec.js';
import { checkImageBuilderListed } from '../core/build-checks.js';
import { ImageError } from '../core/errors.js';
import type { BuildInputs, GpgKey, LockedInput, SigningKey, UsignKey } from '../core/lock.js';
import { dearmorPublicKey, gpgvVerdict } from '../core/openpgp.js';
import type { GpgVerdict } from '../core/openpgp.js';

/** True when `sigText` (a usign/signify .sig file) is a valid signature of `message` by `pubkeyText`. */
export type UsignVerify = (message: Buffer, sigText: string, pubkeyText: string) => boolean | Promise<boolean>;

/** A usign public key file as `usign -G` writes it, built from the lock file's key record. */
export function publicKeyFile(key: UsignKey): string {
  return `untrusted comment: ${key.name} key ${key.keyId}\n${key.publicKey}\n`;
}

/** Key id named by a .sig file (bytes 2..10 of its second line), or undefined if it is not one. */
export function signatureKeyId(sigText: string): string | undefined {
  const line = sigText.split('\n')[1]?.trim();
  if (!line) return undefined;
  const raw = Buffer.from(line, 'base64');
  if (raw.length !== 74 || raw.subarray(0, 2).toString('latin1') !== 'Ed') return undefined;
  return raw.subarray(2, 10).toString('hex');
}

/** Checks an armored detached signature of `message` against a binary keyring holding only the pinned key. */
export type GpgVerify = (message: Buffer, ascText: string, keyring: Buffer, fingerprint: string) => Promise<GpgVerdict>;

export interface SumsVerifiers {
  readonly usign: UsignVerify;
  readonly gpg: GpgVerify;
  /** The binary key of a gpg key (its keyFile, dearmored); the caller reads it next to the lock file. */
  readonly gpgKeyring?: (key: GpgKey) => Promise<Buffer>;
}

async function checkUsign(verify: UsignVerify, sums: Buffer, sigText: string, key: UsignKey, what: string): Promise<void> {
  const id = signatureKeyId(sigText);
  if (id === undefined) throw new ImageError('bad-signature', `${what}: the signature file is not a usign signature`);
  if (id !== key.keyId) {
    throw new ImageError('bad-signature', `${what}: signed with key ${id}, but the lock file expects key ${key.keyId} (${key.name})`);
  }
  let ok: boolean;
  try {
    ok = await verify(sums, sigText, publicKeyFile(key));
  } catch (e) {
    throw new ImageError('bad-signature', `${what}: signature check failed: ${(e as Error).message}`, { cause: e });
  }
  if (!ok) throw new ImageError('bad-signature', `${what}: the signature does not match (file altered or wrong key ${key.keyId})`);
}

export async function checkSignedSums(v: SumsVerifiers, sums: Buffer, sigText: string, key: SigningKey, what: string): Promise<void> {
  if (key.type === 'usign') return checkUsign(v.usign, sums, sigText, key, what);
  if (!v.gpgKeyring) throw new ImageError('bad-signature', `${what}: no way to read the gpg key ${key.keyFile}`);
  if (!sigText.includes('-----BEGIN PGP SIGNATURE-----')) {
    throw new ImageError('bad-signature', `${what}: the signature file is not an armored OpenPGP signature`);
  }
  let verdict: GpgVerdict;
  try {
    verdict = await v.gpg(sums, sigText, await v.gpgKeyring(key), key.fingerprint);
  } catch (e) {
    if (e instanceof ImageError && e.reason !== 'bad-signature') throw e;
    throw new ImageError('bad-signature', `${what}: signature check failed: ${(e as Error).message}`, { cause: e });
  }
  if (!verdict.ok) throw new ImageError('bad-signature', `${what}: ${verdict.problem} (key ${key.name} ${key.fingerprint})`);
}

/**
 * Adapter over gpgv in a throw-away home: the keyring holds only the pinned key, so no other key on the
 * machine can vouch for the file. The verdict comes from the status lines, not the exit code alone.
 */
export const gpgvVerify: GpgVerify = async (message, ascText, keyring, fingerprint) => {
  const dir = await mkdtemp(join(tmpdir(), 'ck-gpgv-'));
  try {
    await writeFile(join(dir, 'm'), message);
    await writeFile(join(dir, 'm.asc'), ascText);
    await writeFile(join(dir, 'pinned.gpg'), keyring);
    const r = await exec(
      'gpgv',
      ['--homedir', dir, '--status-fd', '1', '--keyring', join(dir, 'pinned.gpg'), join(dir, 'm.asc'), join(dir, 'm')],
      { allowFailure: true, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } },
    ).catch((e: unknown) => {
      throw new ImageError('host-tool-missing', `cannot run gpgv (apt-get install gpgv): ${(e as Error).message}`, { cause: e });
    });
    const verdict = gpgvVerdict(r.stdout, fingerprint);
    if (verdict.ok && r.code !== 0) return { ok: false, problem: `gpgv exited ${r.code}: ${r.stderr.trim()}` };
    return verdict;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/** Adapter over OpenBSD signify (`signify-openbsd -V`), which reads the same format as usign. */
export const signifyVerify: UsignVerify = async (message, sigText, pubkeyText) => {
  const dir = await mkdtemp(join(tmpdir(), 'ck-signify-'));
  try {
    await writeFile(join(dir, 'm'), message);
    await writeFile(join(dir, 'm.sig'), sigText);
    await writeFile(join(dir, 'k.pub'), pubkeyText);
    const r = await exec('signify-openbsd', ['-V', '-q', '-p', join(dir, 'k.pub'), '-x', join(dir, 'm.sig'), '-m', join(dir, 'm')], {
      allowFailure: true,
    });
    return r.code === 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/**
 * Checks OpenWrt's signed sha256sums with the pinned key, then that it lists the ImageBuilder with the
 * hash the lock pins; returns the tarball's path. A gpg key's file is read relative to `lockDir`.
 */
export async function verifyImageBuilder(
  b: BuildInputs,
  got: ReadonlyMap<string, { readonly path: string }>,
  v: Omit<SumsVerifiers, 'gpgKeyring'>,
  lockDir: string,
): Promise<string> {
  const path = (i: LockedInput): string => (got.get(i.name) as { path: string }).path;
  const sums = await readFile(path(b.sums));
  const sig = await readFile(path(b.sumsSig), 'utf8');
  const gpgKeyring = async (key: GpgKey): Promise<Buffer> => {
    const file = join(lockDir, key.keyFile);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new ImageError('lock-invalid', `lock file: key "${key.name}": cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    return dearmorPublicKey(text, `key "${key.name}" (${file})`);
  };
  await checkSignedSums({ ...v, gpgKeyring }, sums, sig, b.key, `${b.sums.name} (${b.sums.url})`);
  checkImageBuilderListed(sums.toString('utf8'), b);
  return path(b.imagebuilder);
}
