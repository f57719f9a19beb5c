// SPDX-License-Identifier: UNLICENSED
// The datagram channel's key schedule (docs/tunnel-protocol.md, datagram section). Keys come from the TLS
// session through the exporter (RFC 8446 section 7.5), so they die with it; the exporter context binds them
// to the parameters both ends agreed in the hello (cipher, peer id, generation), so a mismatch fails closed
// instead of decrypting garbage. Within a generation, OpenVPN's epoch scheme
// (draft-openvpntech-openvpn-wire-protocol 7.2) rotates keys without a round trip. Checked against the
// research vectors (/work/research/datagram/vectors.json), which match OpenVPN's own.
import { createHmac } from 'node:crypto';
import { aead } from './aead.js';

export const EXPORTER_LABEL = 'EXPORTER-connector-l2/2-datakeys';
/** Bytes asked of the exporter: OpenVPN's key block {key_c2s[64], auth_c2s[64], key_s2c[64], auth_s2c[64]}. */
export const KEY_BLOCK_LENGTH = 256;

export type DatagramCipher = 'AES-256-GCM' | 'CHACHA20-POLY1305';
const CIPHER_IDS: Record<DatagramCipher, number> = { 'AES-256-GCM': 1, 'CHACHA20-POLY1305': 2 };

export interface EpochKeys {
  readonly epoch: number;
  readonly key: Buffer;
  readonly iv: Buffer;
}

/** HKDF-Expand (RFC 5869) with SHA-256. */
export function hkdfExpand(prk: Buffer, info: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  let t = Buffer.alloc(0);
  for (let i = 1, off = 0; off < length; i++) {
    t = createHmac('sha256', prk)
      .update(t)
      .update(info)
      .update(Buffer.from([i]))
      .digest();
    off += t.copy(out, off);
  }
  return out;
}

/** OVPN-Expand-Label: TLS 1.3's HKDF-Expand-Label with the prefix "ovpn ". */
export function ovpnExpandLabel(secret: Buffer, label: string, context: Buffer | null, length: number): Buffer {
  const l = Buffer.from('ovpn ' + label, 'ascii');
  const c = context ?? Buffer.alloc(0);
  const info = Buffer.concat([Buffer.from([length >> 8, length & 255, l.length]), l, Buffer.from([c.length]), c]);
  return hkdfExpand(secret, info, length);
}

/** E(n+1) from E(n); the old secret is not recoverable from the new one. */
export const nextEpochSecret = (e: Buffer): Buffer => ovpnExpandLabel(e, 'datakey upd', null, 32);

export function epochKeys(secret: Buffer, epoch: number, keyLength = 32): EpochKeys {
  return { epoch, key: ovpnExpandLabel(secret, 'data_key', null, keyLength), iv: ovpnExpandLabel(secret, 'data_iv', null, 12) };
}

/** 'cl2' | version 2 | cipher id | u24 peer id | u32 generation. */
export function exporterContext(cipher: DatagramCipher, peerId: number, generation: number): Buffer {
  const c = Buffer.alloc(12);
  c.write('cl2', 0, 'ascii');
  c[3] = 2;
  c[4] = CIPHER_IDS[cipher];
  c.writeUIntBE(peerId & 0xffffff, 5, 3);
  c.writeUInt32BE(generation >>> 0, 8);
  return c;
}

/** Epoch-1 secrets of both directions from the exported key block; a2h is the agent (TLS client) sending. */
export function initialSecrets(block: Buffer): { a2h: Buffer; h2a: Buffer } {
  if (block.length !== KEY_BLOCK_LENGTH) throw new RangeError(`key block must be ${KEY_BLOCK_LENGTH} bytes`);
  return { a2h: Buffer.from(block.subarray(0, 32)), h2a: Buffer.from(block.subarray(128, 160)) };
}

/**
 * One direction's epoch chain. The sender moves to the next epoch well before AES-GCM's usage limit; the
 * receiver keeps the current and the next epoch's keys, so a datagram of the next epoch is accepted (and
 * moves the receiver on) while one of a retired epoch is not: a stolen old key opens nothing new.
 */
export class EpochChain {
  #secret: Buffer;
  #current: EpochKeys;

  constructor(initial: Buffer, keyLength = 32) {
    this.#secret = Buffer.from(initial);
    this.#current = epochKeys(this.#secret, 1, keyLength);
  }

  get current(): EpochKeys {
    return this.#current;
  }

  /** Moves to epoch n+1 and wipes the old secret. Epochs are u16; the generation rekeys before 65535. */
  advance(): EpochKeys {
    if (this.#current.epoch >= 0xffff) throw new RangeError('epoch space exhausted: rekey the generation');
    const next = nextEpochSecret(this.#secret);
    this.#secret.fill(0);
    aead().release(this.#current);
    this.#current.key.fill(0);
    this.#secret = next;
    this.#current = epochKeys(next, this.#current.epoch + 1, this.#current.key.length);
    return this.#current;
  }

  /** Keys of the next epoch without moving on (the receiver's look-ahead). */
  peekNext(): EpochKeys {
    const next = nextEpochSecret(this.#secret);
    const keys = epochKeys(next, this.#current.epoch + 1, this.#current.key.length);
    next.fill(0);
    return keys;
  }

  destroy(): void {
    this.#secret.fill(0);
    aead().release(this.#current);
    this.#current.key.fill(0);
  }
}
