// SPDX-License-Identifier: UNLICENSED
// The two OpenPGP facts the build needs without a full OpenPGP implementation: the binary key inside an
// armored public key file (gpgv reads binary keyrings only), and gpgv's verdict from its machine-readable
// status lines. The cryptography is gpgv's. Pure.
import { ImageError } from './errors.js';

/** CRC-24 of RFC 4880 §6.1, which armor carries as `=XXXX`. */
function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/** The binary packets of an armored `PUBLIC KEY BLOCK`; refuses anything else or a bad checksum. */
export function dearmorPublicKey(text: string, what: string): Buffer {
  const lines = text.replace(/\r/g, '').split('\n');
  const begin = lines.indexOf('-----BEGIN PGP PUBLIC KEY BLOCK-----');
  const end = lines.indexOf('-----END PGP PUBLIC KEY BLOCK-----');
  if (begin < 0 || end < begin) throw new ImageError('lock-invalid', `${what} is not an armored OpenPGP public key`);
  let i = begin + 1;
  while (i < end && lines[i]?.trim() !== '') i++; // armor headers ("Comment: ...") end at a blank line
  const body: string[] = [];
  let sum: string | undefined;
  for (const raw of lines.slice(i + 1, end)) {
    const line = raw.trim();
    if (line.startsWith('=')) sum = line.slice(1);
    else if (line) body.push(line);
  }
  const joined = body.join('');
  if (!/^[A-Za-z0-9+/]+=*$/.test(joined)) throw new ImageError('lock-invalid', `${what}: the armored key is not base64`);
  const bytes = Buffer.from(joined, 'base64');
  if (sum !== undefined) {
    const want = Buffer.from(sum, 'base64');
    if (want.length !== 3 || want.readUIntBE(0, 3) !== crc24(bytes)) {
      throw new ImageError('lock-invalid', `${what}: the armor checksum does not match (file damaged)`);
    }
  }
  // A public-key packet (tag 6) must come first, in old (0x99) or new (0xc6) packet format.
  if (bytes[0] !== 0x99 && bytes[0] !== 0x98 && bytes[0] !== 0xc6)
    throw new ImageError('lock-invalid', `${what} does not start with a public key`);
  return bytes;
}

export type GpgVerdict = { ok: true; signingKey: string } | { ok: false; problem: string };

/**
 * Reads `gpgv --status-fd` output. Good only with a VALIDSIG whose primary-key fingerprint (its last
 * field) is the pinned one and no BADSIG/ERRSIG/EXPKEYSIG/REVKEYSIG/EXPSIG anywhere: a file with two
 * signatures, one of them bad, is refused.
 */
export function gpgvVerdict(status: string, fingerprint: string): GpgVerdict {
  const lines = status
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice(9).trim().split(/\s+/));
  const bad = lines.find((f) => ['BADSIG', 'ERRSIG', 'EXPKEYSIG', 'REVKEYSIG', 'EXPSIG', 'NODATA'].includes(f[0] ?? ''));
  if (bad) {
    const why: Record<string, string> = {
      BADSIG: 'the signature does not match (file altered)',
      ERRSIG: 'the signature cannot be checked (made by a key other than the pinned one, or an unknown algorithm)',
      EXPKEYSIG: 'the signing key has expired',
      REVKEYSIG: 'the signing key is revoked',
      EXPSIG: 'the signature has expired',
      NODATA: 'the signature file holds no OpenPGP signature',
    };
    return { ok: false, problem: `${why[bad[0] as string] as string} (${bad.join(' ')})` };
  }
  const valid = lines.filter((f) => f[0] === 'VALIDSIG');
  if (valid.length === 0) return { ok: false, problem: 'gpgv reported no valid signature' };
  for (const v of valid) {
    const primary = (v[v.length - 1] ?? '').toUpperCase();
    if (primary !== fingerprint) return { ok: false, problem: `signed by key ${primary}, the lock file pins ${fingerprint}` };
  }
  return { ok: true, signingKey: (valid[0]?.[1] ?? '').toUpperCase() };
}
