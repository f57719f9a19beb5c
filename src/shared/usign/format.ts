// SPDX-License-Identifier: UNLICENSED
// The usign/signify file formats (OpenBSD signify, OpenWrt usign): a text file of two lines,
// `untrusted comment: ...` then base64 of a fixed-size binary struct whose first two bytes name the
// algorithm ("Ed") and whose next eight are the key number that ties signatures to keys.
//   public key  'Ed' | keynum(8) | pubkey(32)
//   signature   'Ed' | keynum(8) | sig(64)
//   secret key  'Ed' | 'BK' | kdfrounds(u32 BE) | salt(16) | checksum(8) | keynum(8) | seckey(64)
// Pure codecs: bytes and strings in, typed values out; malformed input throws CK_ERR_USIGN_FORMAT.
import { createHash } from 'node:crypto';
import { ConnectorError } from '../errors.js';

export const USIGN_COMMENT_PREFIX = 'untrusted comment: ';
/** signify caps the comment line; longer ones make it refuse the file. */
export const USIGN_COMMENT_MAX = 1024 - USIGN_COMMENT_PREFIX.length - 1;
const PKALG = Buffer.from('Ed', 'ascii');
const KDFALG = Buffer.from('BK', 'ascii');
export const USIGN_PUBLIC_KEY_LEN = 2 + 8 + 32;
export const USIGN_SIGNATURE_LEN = 2 + 8 + 64;
export const USIGN_SECRET_KEY_LEN = 2 + 2 + 4 + 16 + 8 + 8 + 64;

export interface UsignPublicKey {
  /** Hex of the 8-byte key number, as usign prints it and OpenWrt names /etc/opkg/keys/<keyid>. */
  readonly keyId: string;
  readonly keynum: Buffer;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly comment: string;
}

export interface UsignSignature {
  readonly keyId: string;
  readonly keynum: Buffer;
  /** Raw 64-byte Ed25519 signature. */
  readonly signature: Buffer;
  readonly comment: string;
}

export interface UsignSecretKey {
  readonly keyId: string;
  readonly keynum: Buffer;
  /** NaCl layout: seed(32) | public key(32). */
  readonly secretKey: Buffer;
  readonly comment: string;
}

function formatError(what: string, problem: string): ConnectorError {
  return new ConnectorError('CK_ERR_USIGN_FORMAT', `${what}: ${problem}`);
}

/**
 * Splits a usign text file into comment and decoded body. A bare base64 line (how openwrt.org publishes
 * keys) is accepted too, with an empty comment.
 */
function decodeText(text: string, what: string, expectedLen: number): { comment: string; body: Buffer } {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let comment = '';
  let b64: string | undefined;
  if (lines[0]?.startsWith(USIGN_COMMENT_PREFIX)) {
    comment = lines[0].slice(USIGN_COMMENT_PREFIX.length);
    b64 = lines[1];
  } else if (lines[0]?.startsWith('untrusted comment:')) {
    comment = lines[0].slice('untrusted comment:'.length).trimStart();
    b64 = lines[1];
  } else if (lines.filter((l) => l.trim() !== '').length === 1) {
    b64 = lines[0];
  } else {
    throw formatError(what, `first line must start with "${USIGN_COMMENT_PREFIX}"`);
  }
  b64 = (b64 ?? '').trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw formatError(what, 'second line is not base64');
  const body = Buffer.from(b64, 'base64');
  if (body.length !== expectedLen) {
    throw formatError(what, `decoded to ${body.length} bytes, expected ${expectedLen}; is this the right kind of file?`);
  }
  if (!body.subarray(0, 2).equals(PKALG)) {
    throw formatError(what, `algorithm "${body.subarray(0, 2).toString('latin1')}" is not "Ed" (Ed25519)`);
  }
  return { comment, body };
}

function encodeText(comment: string, body: Buffer): string {
  if (/[\r\n]/.test(comment)) throw formatError('comment', 'must be a single line');
  if (comment.length > USIGN_COMMENT_MAX) throw formatError('comment', `longer than ${USIGN_COMMENT_MAX} characters`);
  return `${USIGN_COMMENT_PREFIX}${comment}\n${body.toString('base64')}\n`;
}

function checkKeynum(keynum: Buffer): void {
  if (keynum.length !== 8) throw formatError('keynum', `must be 8 bytes, got ${keynum.length}`);
}

export function keyIdOf(keynum: Buffer): string {
  return keynum.toString('hex');
}

export function parseUsignPublicKey(text: string): UsignPublicKey {
  const { comment, body } = decodeText(text, 'usign public key', USIGN_PUBLIC_KEY_LEN);
  const keynum = Buffer.from(body.subarray(2, 10));
  return { keyId: keyIdOf(keynum), keynum, publicKey: Buffer.from(body.subarray(10)), comment };
}

export function encodeUsignPublicKey(key: Omit<UsignPublicKey, 'keyId'>): string {
  checkKeynum(key.keynum);
  if (key.publicKey.length !== 32) throw formatError('public key', 'must be 32 bytes');
  return encodeText(key.comment, Buffer.concat([PKALG, key.keynum, key.publicKey]));
}

export function parseUsignSignature(text: string): UsignSignature {
  const { comment, body } = decodeText(text, 'usign signature', USIGN_SIGNATURE_LEN);
  const keynum = Buffer.from(body.subarray(2, 10));
  return { keyId: keyIdOf(keynum), keynum, signature: Buffer.from(body.subarray(10)), comment };
}

export function encodeUsignSignature(sig: Omit<UsignSignature, 'keyId'>): string {
  checkKeynum(sig.keynum);
  if (sig.signature.length !== 64) throw formatError('signature', 'must be 64 bytes');
  return encodeText(sig.comment, Buffer.concat([PKALG, sig.keynum, sig.signature]));
}

function secretChecksum(secretKey: Buffer): Buffer {
  return createHash('sha512').update(secretKey).digest().subarray(0, 8);
}

/**
 * Only unencrypted secret keys (kdfrounds 0: `signify -G -n`, `usign -G`) are read; a passphrase-protected
 * key is refused with a message saying so rather than silently producing wrong signatures.
 */
export function parseUsignSecretKey(text: string): UsignSecretKey {
  const { comment, body } = decodeText(text, 'usign secret key', USIGN_SECRET_KEY_LEN);
  if (!body.subarray(2, 4).equals(KDFALG)) throw formatError('usign secret key', 'KDF algorithm is not "BK"');
  const rounds = body.readUInt32BE(4);
  if (rounds !== 0) {
    throw formatError('usign secret key', `is passphrase-protected (${rounds} KDF rounds); create one with no passphrase (signify -G -n)`);
  }
  const checksum = body.subarray(24, 32);
  const keynum = Buffer.from(body.subarray(32, 40));
  const secretKey = Buffer.from(body.subarray(40, 104));
  if (!secretChecksum(secretKey).equals(checksum)) throw formatError('usign secret key', 'checksum mismatch (corrupt file)');
  return { keyId: keyIdOf(keynum), keynum, secretKey, comment };
}

/** `salt` only matters for passphrase-protected keys; it is kept random so files look like signify's. */
export function encodeUsignSecretKey(key: Omit<UsignSecretKey, 'keyId'>, salt: Buffer): string {
  checkKeynum(key.keynum);
  if (key.secretKey.length !== 64) throw formatError('secret key', 'must be 64 bytes (seed | public key)');
  if (salt.length !== 16) throw formatError('salt', 'must be 16 bytes');
  const rounds = Buffer.alloc(4);
  const body = Buffer.concat([PKALG, KDFALG, rounds, salt, secretChecksum(key.secretKey), key.keynum, key.secretKey]);
  return encodeText(key.comment, body);
}
