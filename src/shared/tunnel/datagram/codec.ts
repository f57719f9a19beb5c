// SPDX-License-Identifier: UNLICENSED
// The datagram layout: OpenVPN's DATA_V2 with the epoch packet id (draft-openvpntech-openvpn-wire-protocol),
// byte for byte, so Wireshark's OpenVPN dissector and OpenVPN's own test vectors check it:
//   [opcode 9 << 3 | key id (1)] [peer id (3)] [epoch u16] [counter u48] [ciphertext] [tag (16)]
// The 12 clear bytes are the AEAD's associated data; the nonce is the epoch's implicit IV XOR
// (epoch || counter), left-aligned. Nothing here throws on input from the network: a datagram that is
// not ours, too short, of another peer, replayed or not authentic is a reason string, counted by the caller.
import { aead, HEADER_LENGTH, nonce, TAG_LENGTH } from './aead.js';
import type { DatagramCipher, EpochKeys } from './keys.js';
import { ReplayWindow } from './replay-window.js';

export const OP_DATA_V2 = 9;
export { HEADER_LENGTH, nonce, TAG_LENGTH };
export const OVERHEAD = HEADER_LENGTH + TAG_LENGTH;
/** Counters are u48; a sender moves to the next epoch long before (AES-GCM's limit is far lower). */
export const MAX_COUNTER = 2 ** 48 - 1;

export interface DatagramHeader {
  keyId: number;
  peerId: number;
  epoch: number;
  counter: number;
}

export function writeHeader(buf: Buffer, h: DatagramHeader): void {
  writeHeaderFields(buf, h.keyId, h.peerId, h.epoch, h.counter);
}

/** writeHeader without the object: byte by byte (Buffer's writeUIntBE cost more than the AEAD in a profile). */
function writeHeaderFields(buf: Buffer, keyId: number, peerId: number, epoch: number, counter: number): void {
  const hi = Math.floor(counter / 2 ** 32);
  const lo = counter >>> 0;
  buf[0] = (OP_DATA_V2 << 3) | (keyId & 7);
  buf[1] = (peerId >>> 16) & 255;
  buf[2] = (peerId >>> 8) & 255;
  buf[3] = peerId & 255;
  buf[4] = (epoch >>> 8) & 255;
  buf[5] = epoch & 255;
  buf[6] = (hi >>> 8) & 255;
  buf[7] = hi & 255;
  buf[8] = lo >>> 24;
  buf[9] = (lo >>> 16) & 255;
  buf[10] = (lo >>> 8) & 255;
  buf[11] = lo & 255;
}

/** The clear header, or null when it cannot be one of ours. Reads only; never throws. */
export function parseHeader(d: Uint8Array): DatagramHeader | null {
  if (d.length < OVERHEAD + 1 || (d[0] ?? 0) >> 3 !== OP_DATA_V2) return null;
  const b = (i: number): number => d[i] ?? 0;
  return {
    keyId: b(0) & 7,
    peerId: (b(1) << 16) | (b(2) << 8) | b(3),
    epoch: (b(4) << 8) | b(5),
    counter: b(6) * 2 ** 40 + b(7) * 2 ** 32 + ((b(8) << 24) >>> 0) + (b(9) << 16) + (b(10) << 8) + b(11),
  };
}

/**
 * Seals one payload as a datagram (header + payload + tag, in memory from `alloc`: a new Buffer by
 * default, the socket's send arena on the data path). The payload may come in parts (a kind byte and a
 * frame): they are encrypted in order into the output, never joined first.
 */
export function seal(
  cipher: DatagramCipher,
  keys: EpochKeys,
  h: Omit<DatagramHeader, 'epoch'>,
  payload: Uint8Array | readonly Uint8Array[],
  alloc: (size: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  if (!Number.isSafeInteger(h.counter) || h.counter < 1 || h.counter > MAX_COUNTER) throw new RangeError('counter out of range');
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  let length = 0;
  for (const part of parts) length += part.length;
  const out = alloc(HEADER_LENGTH + length + TAG_LENGTH);
  writeHeaderFields(out, h.keyId, h.peerId, keys.epoch, h.counter);
  aead().seal(cipher, keys, out, h.counter, parts);
  return out;
}

/** The payload if the datagram is authentic under keys, else null. Never throws. */
export function open(cipher: DatagramCipher, keys: EpochKeys, d: Buffer, h: DatagramHeader): Buffer | null {
  if (h.epoch !== keys.epoch || d.length < OVERHEAD + 1) return null;
  return aead().open(cipher, keys, d, h.counter);
}

export type DropReason = 'not-data-v2' | 'peer' | 'key-id' | 'epoch' | 'zero' | 'too-old' | 'replay' | 'auth';
export type OpenResult = { ok: true; payload: Buffer; epoch: number; counter: number } | { ok: false; reason: DropReason };

/**
 * One direction's receiver for one session: the cheap checks first (opcode, peer id, key id, epoch,
 * replay), the AEAD last, and the replay window moved only by an authentic datagram.
 */
export class DatagramReceiver {
  readonly #replay = new Map<number, ReplayWindow>();

  constructor(
    private readonly cipher: DatagramCipher,
    private readonly peerId: number,
    private readonly keyId: number,
    /** Keys for an epoch the receiver accepts (current, or the next one), else null. */
    private readonly keysFor: (epoch: number) => EpochKeys | null,
  ) {}

  open(d: Buffer): OpenResult {
    const h = parseHeader(d);
    if (!h) return { ok: false, reason: 'not-data-v2' };
    if (h.peerId !== this.peerId) return { ok: false, reason: 'peer' };
    if (h.keyId !== this.keyId) return { ok: false, reason: 'key-id' };
    const keys = this.keysFor(h.epoch);
    if (!keys) return { ok: false, reason: 'epoch' };
    const win = this.#replay.get(h.epoch);
    const verdict = win ? win.check(h.counter) : h.counter === 0 ? 'zero' : null;
    if (verdict) return { ok: false, reason: verdict };
    const payload = open(this.cipher, keys, d, h);
    if (!payload) return { ok: false, reason: 'auth' };
    let w = win;
    if (!w) {
      w = new ReplayWindow();
      this.#replay.set(h.epoch, w);
      // Two epochs at most: the one being left and the one being entered.
      for (const e of this.#replay.keys()) if (e < h.epoch - 1) this.#replay.delete(e);
    }
    w.commit(h.counter);
    return { ok: true, payload, epoch: h.epoch, counter: h.counter };
  }
}
