// SPDX-License-Identifier: UNLICENSED
// Key generation, signing and verification in the usign/signify format on top of node:crypto's Ed25519.
// No I/O: callers read and write the files. Randomness comes from node:crypto unless injected (tests).
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { ConnectorError } from '../errors.js';
import { keyIdOf, parseUsignSignature, type UsignPublicKey, type UsignSecretKey, type UsignSignature } from './format.js';

// DER prefixes that wrap raw Ed25519 keys (RFC 8410) so node:crypto accepts them.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function ed25519PublicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function privateKeyObject(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function rawPublicFromSeed(seed: Buffer): Buffer {
  const jwk = createPublicKey(privateKeyObject(seed)).export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url');
}

export interface UsignKeyPair {
  readonly publicKey: UsignPublicKey;
  readonly secretKey: UsignSecretKey;
}

export interface KeygenOptions {
  /** Text after "untrusted comment: "; defaults to what signify writes. */
  comment?: string;
  random?: (n: number) => Buffer;
}

export function generateUsignKeyPair(options: KeygenOptions = {}): UsignKeyPair {
  const random = options.random ?? randomBytes;
  const seed = random(32);
  const keynum = random(8);
  const pub = rawPublicFromSeed(seed);
  const base = options.comment ?? 'connector release key';
  return {
    publicKey: { keyId: keyIdOf(keynum), keynum, publicKey: pub, comment: `${base} public key` },
    secretKey: { keyId: keyIdOf(keynum), keynum, secretKey: Buffer.concat([seed, pub]), comment: `${base} secret key` },
  };
}

/** The public half of a secret key, for `release keygen` output and for checking a key pair matches. */
export function usignPublicKeyOf(secret: UsignSecretKey, comment = 'connector release key public key'): UsignPublicKey {
  return { keyId: secret.keyId, keynum: secret.keynum, publicKey: Buffer.from(secret.secretKey.subarray(32)), comment };
}

export function signUsign(message: Uint8Array, secret: UsignSecretKey, comment?: string): UsignSignature {
  const seed = secret.secretKey.subarray(0, 32);
  const signature = sign(null, message, privateKeyObject(seed));
  return {
    keyId: secret.keyId,
    keynum: secret.keynum,
    signature,
    comment: comment ?? `verify with ${secret.keyId}.pub`,
  };
}

export type UsignVerifyFailure = 'malformed-signature' | 'unknown-key' | 'bad-signature';
export type UsignVerifyResult =
  { readonly ok: true; readonly keyId: string } | { readonly ok: false; readonly reason: UsignVerifyFailure; readonly detail: string };

/**
 * Verifies `message` against a usign/signify signature (file text or parsed) with whichever trusted key
 * carries the signature's key number (several keys = rotation slots). Returns a result instead of
 * throwing: a bad signature is an expected outcome, not a programming error.
 */
export function verifyUsign(
  message: Uint8Array,
  signature: string | UsignSignature,
  trusted: UsignPublicKey | readonly UsignPublicKey[],
): UsignVerifyResult {
  let sig: UsignSignature;
  try {
    sig = typeof signature === 'string' ? parseUsignSignature(signature) : signature;
  } catch (e) {
    return { ok: false, reason: 'malformed-signature', detail: e instanceof Error ? e.message : String(e) };
  }
  const keys: readonly UsignPublicKey[] = Array.isArray(trusted) ? trusted : [trusted as UsignPublicKey];
  const key = keys.find((k) => k.keynum.equals(sig.keynum));
  if (!key) {
    const have = keys.map((k) => k.keyId).join(', ') || 'none';
    return { ok: false, reason: 'unknown-key', detail: `signed by key ${sig.keyId}, trusted keys: ${have}` };
  }
  const good = verify(null, message, ed25519PublicKeyObject(key.publicKey), sig.signature);
  return good
    ? { ok: true, keyId: key.keyId }
    : { ok: false, reason: 'bad-signature', detail: `signature by key ${key.keyId} does not match the message` };
}

/** Throwing variant for setup paths (CLI `release verify`): CK_ERR_OTA_BAD_SIGNATURE with the reason. */
export function assertUsign(
  message: Uint8Array,
  signature: string | UsignSignature,
  trusted: UsignPublicKey | readonly UsignPublicKey[],
): string {
  const r = verifyUsign(message, signature, trusted);
  if (!r.ok) throw new ConnectorError('CK_ERR_OTA_BAD_SIGNATURE', `${r.reason}: ${r.detail}`);
  return r.keyId;
}
