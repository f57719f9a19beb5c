// SPDX-License-Identifier: UNLICENSED
// Checking a publisher's signature over a checksum list. The check itself is a port so the build can use
// the kit's own usign verifier (src/shared/usign) and tests can cross-check with stock signify.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { ImageError } from '../core/errors.js';
import type { SigningKey } from '../core/lock.js';

/** True when `sigText` (a usign/signify .sig file) is a valid signature of `message` by `pubkeyText`. */
export type UsignVerify = (message: Buffer, sigText: string, pubkeyText: string) => boolean | Promise<boolean>;

/** A usign public key file as `usign -G` writes it, built from the lock file's key record. */
export function publicKeyFile(key: SigningKey): string {
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

export async function checkSignedSums(verify: UsignVerify, sums: Buffer, sigText: string, key: SigningKey, what: string): Promise<void> {
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
