// SPDX-License-Identifier: UNLICENSED
// MAC addresses. On hot paths a MAC is a 48-bit number ("key"): exact in a double since 2^48 < 2^53, cheap
// to compare and to use as a Map key, and it needs no allocation per frame.
import { ConfigError } from '../errors.js';

export const MAC_LEN = 6;
export const BROADCAST_MAC_KEY = 0xffff_ffff_ffff;
/** IEEE 802.1D reserved group addresses 01:80:c2:00:00:00 to :0f; :00 is the STP/RSTP BPDU address. */
export const BPDU_MAC_KEY = 0x0180_c200_0000;
export const RESERVED_GROUP_LAST_KEY = 0x0180_c200_000f;

const TWO_32 = 0x1_0000_0000;
const TWO_40 = 0x100_0000_0000;

/** The 48-bit key of the MAC at `buf[off..off+6)`. The caller guarantees the 6 bytes exist. */
export function macKeyAt(buf: Uint8Array, off: number): number {
  const hi = ((buf[off] ?? 0) << 8) | (buf[off + 1] ?? 0);
  const lo = (((buf[off + 2] ?? 0) << 24) | ((buf[off + 3] ?? 0) << 16) | ((buf[off + 4] ?? 0) << 8) | (buf[off + 5] ?? 0)) >>> 0;
  return hi * TWO_32 + lo;
}

/** Writes a MAC key as 6 bytes at `buf[off]`. */
export function writeMacKey(buf: Uint8Array, off: number, key: number): void {
  const hi = Math.floor(key / TWO_32);
  const lo = key >>> 0;
  buf[off] = (hi >>> 8) & 0xff;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

export function macKeyToBuffer(key: number): Buffer {
  const b = Buffer.alloc(MAC_LEN);
  writeMacKey(b, 0, key);
  return b;
}

/** A MAC given either as a key or as bytes (the first 6 are used). */
export type MacInput = number | Uint8Array;

export function macKey(mac: MacInput): number {
  return typeof mac === 'number' ? mac : macKeyAt(mac, 0);
}

/** Lower-case, colon separated: `02:00:5e:10:00:01`. */
export function macToString(mac: MacInput): string {
  const key = macKey(mac);
  return key
    .toString(16)
    .padStart(12, '0')
    .replace(/(..)(?!$)/g, '$1:');
}

/**
 * Parses `aa:bb:cc:dd:ee:ff` (also `-` separated or 12 bare hex digits) for configuration. Throws a
 * ConfigError naming `key`; never used on frames.
 */
export function parseMac(text: string, key = 'mac'): Buffer {
  const t = text.trim();
  const m = /^([0-9a-fA-F]{2})([:-]?)([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(t);
  if (!m) throw new ConfigError(key, `"${text}" is not a MAC address; write six hex bytes like 02:00:5e:10:00:01`);
  return Buffer.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => Number.parseInt(h ?? '0', 16)));
}

/** Group (multicast or broadcast) bit: the least significant bit of the first byte. */
export function isMulticastKey(key: number): boolean {
  return (Math.floor(key / TWO_40) & 1) === 1;
}

export function isBroadcastKey(key: number): boolean {
  return key === BROADCAST_MAC_KEY;
}

/** 01:80:c2:00:00:00-0f: link-local control traffic (BPDU, LACP, LLDP, 802.1X) a bridge must not forward. */
export function isReservedGroupKey(key: number): boolean {
  return key >= BPDU_MAC_KEY && key <= RESERVED_GROUP_LAST_KEY;
}
