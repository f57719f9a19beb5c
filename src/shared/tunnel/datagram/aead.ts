// SPDX-License-Identifier: UNLICENSED
// Who does the datagram channel's AEAD. By default node:crypto, which builds a cipher (and a key schedule)
// for every datagram: about 6 µs each at 1,400 bytes. A program that loads the native addon installs its
// backend once at start (useAead), which keeps one context per epoch key: under 1 µs to seal. Both
// produce the same bytes (codec.ts describes the layout); the native one is checked against this one
// before it is used (shared/native/datagram-aead.ts).
import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from 'node:crypto';
import type { DatagramCipher, EpochKeys } from './keys.js';

export const NODE_CIPHER: Record<DatagramCipher, 'aes-256-gcm' | 'chacha20-poly1305'> = {
  'AES-256-GCM': 'aes-256-gcm',
  'CHACHA20-POLY1305': 'chacha20-poly1305',
};
export const HEADER_LENGTH = 12;
export const TAG_LENGTH = 16;

export interface AeadBackend {
  readonly name: string;
  /**
   * Encrypts `parts` in order into `out` after its 12 header bytes (the associated data, already written)
   * and puts the tag in its last 16; `out` is exactly header + parts + tag long.
   */
  seal(cipher: DatagramCipher, keys: EpochKeys, nonce: Buffer, out: Buffer, counter: number, parts: readonly Uint8Array[]): void;
  /** The payload of an authentic datagram (header, ciphertext, tag), else null. Never throws. */
  open(cipher: DatagramCipher, keys: EpochKeys, nonce: Buffer, d: Buffer, counter: number): Buffer | null;
  /** The keys are retired: whatever the backend keeps for them goes now. */
  release(keys: EpochKeys): void;
}

// Both AEADs take the same calls; the branch only picks @types/node's overload.
function cipherFor(cipher: DatagramCipher, key: Buffer, iv: Buffer): CipherGCM {
  const alg = NODE_CIPHER[cipher];
  return alg === 'aes-256-gcm'
    ? createCipheriv(alg, key, iv, { authTagLength: TAG_LENGTH })
    : (createCipheriv(alg, key, iv, { authTagLength: TAG_LENGTH }) as unknown as CipherGCM);
}
function decipherFor(cipher: DatagramCipher, key: Buffer, iv: Buffer): DecipherGCM {
  const alg = NODE_CIPHER[cipher];
  return alg === 'aes-256-gcm'
    ? createDecipheriv(alg, key, iv, { authTagLength: TAG_LENGTH })
    : (createDecipheriv(alg, key, iv, { authTagLength: TAG_LENGTH }) as unknown as DecipherGCM);
}

export const nodeCryptoAead: AeadBackend = {
  name: 'node:crypto',
  seal(cipher, keys, nonce, out, _counter, parts) {
    const c = cipherFor(cipher, keys.key, nonce);
    c.setAAD(out.subarray(0, HEADER_LENGTH));
    let at = HEADER_LENGTH;
    for (const part of parts) at += c.update(part).copy(out, at);
    c.final();
    c.getAuthTag().copy(out, out.length - TAG_LENGTH);
  },
  open(cipher, keys, nonce, d) {
    try {
      const c = decipherFor(cipher, keys.key, nonce);
      c.setAAD(d.subarray(0, HEADER_LENGTH));
      c.setAuthTag(d.subarray(d.length - TAG_LENGTH));
      const p = c.update(d.subarray(HEADER_LENGTH, d.length - TAG_LENGTH));
      c.final();
      return p;
    } catch {
      return null;
    }
  },
  release() {},
};

let current: AeadBackend = nodeCryptoAead;

export function aead(): AeadBackend {
  return current;
}

/** Installs the backend every datagram channel of this process uses from now on. */
export function useAead(backend: AeadBackend): void {
  current = backend;
}
