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
  seal(cipher: DatagramCipher, keys: EpochKeys, out: Buffer, counter: number, parts: readonly Uint8Array[]): void;
  /**
   * The payload of an authentic datagram (header, ciphertext, tag), else null. Never throws. The payload
   * may be opened in place, a view of `d`'s own bytes (the native backend): `d` is consumed either way.
   */
  open(cipher: DatagramCipher, keys: EpochKeys, d: Buffer, counter: number): Buffer | null;
  /** The keys are retired: whatever the backend keeps for them goes now. */
  release(keys: EpochKeys): void;
  /**
   * Optional (the native backend): a TCP super-frame cut into segments of `cut.mss` payload bytes as
   * tso-segment.ts's segmentOffload() cuts it, each sealed as one datagram whose header is `head` (its
   * first 6 bytes: opcode and key id, peer id, epoch) and counter `counter + i`, with `kind` before the
   * segment; written back to back into `out` (segmentDatagrams(cut).length long). Returns the datagrams written.
   */
  sealSegments?(
    cipher: DatagramCipher,
    keys: EpochKeys,
    out: Buffer,
    head: Buffer,
    counter: number,
    kind: number,
    frame: Uint8Array,
    cut: SegmentCut,
  ): number;
}

/** Where a validated super-frame's headers end and how it is cut (tso-segment.ts's Offload, and the mss). */
export interface SegmentCut {
  readonly l3: number;
  readonly l4: number;
  readonly headers: number;
  readonly ipEnd: number;
  readonly ipv6: boolean;
  readonly mss: number;
}

/** How many datagrams sealSegments() writes for `cut`, and their total length. */
export function segmentDatagrams(cut: SegmentCut): { count: number; length: number } {
  const payload = cut.ipEnd - cut.headers;
  const count = Math.max(1, Math.ceil(payload / cut.mss));
  // Each: header, kind byte, the frame's headers, its share of the payload, tag.
  return { count, length: count * (HEADER_LENGTH + 1 + cut.headers + TAG_LENGTH) + payload };
}

/**
 * The epoch's implicit IV XOR (u16 epoch || u48 counter), left-aligned. Into `out` when given: a new
 * 12-byte Buffer per datagram is an ArrayBuffer of its own, which the garbage collector pays for.
 */
export function nonce(iv: Buffer, epoch: number, counter: number, out: Buffer = Buffer.alloc(12)): Buffer {
  iv.copy(out, 0);
  const hi = Math.floor(counter / 2 ** 32);
  const lo = counter >>> 0;
  out[0] = (out[0] ?? 0) ^ (epoch >>> 8);
  out[1] = (out[1] ?? 0) ^ (epoch & 255);
  out[2] = (out[2] ?? 0) ^ ((hi >>> 8) & 255);
  out[3] = (out[3] ?? 0) ^ (hi & 255);
  out[4] = (out[4] ?? 0) ^ (lo >>> 24);
  out[5] = (out[5] ?? 0) ^ ((lo >>> 16) & 255);
  out[6] = (out[6] ?? 0) ^ ((lo >>> 8) & 255);
  out[7] = (out[7] ?? 0) ^ (lo & 255);
  return out;
}

// node:crypto copies the IV into the cipher: one scratch nonce serves every call.
const scratch = Buffer.alloc(12);

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
  seal(cipher, keys, out, counter, parts) {
    const c = cipherFor(cipher, keys.key, nonce(keys.iv, keys.epoch, counter, scratch));
    c.setAAD(out.subarray(0, HEADER_LENGTH));
    let at = HEADER_LENGTH;
    for (const part of parts) at += c.update(part).copy(out, at);
    c.final();
    c.getAuthTag().copy(out, out.length - TAG_LENGTH);
  },
  open(cipher, keys, d, counter) {
    try {
      const c = decipherFor(cipher, keys.key, nonce(keys.iv, keys.epoch, counter, scratch));
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
