// SPDX-License-Identifier: UNLICENSED
// The Internet checksum (RFC 1071): a 16-bit one's-complement sum. Used by the IPv4 header, UDP and the
// ICMPv6 pseudo-header checksum (RFC 4443 section 2.3). Works on any byte view, allocates nothing.

/**
 * Adds `len` bytes of `buf` starting at `off` to a running 32-bit sum (not yet folded). An odd trailing
 * byte counts as the high byte of a zero-padded word, as RFC 1071 requires.
 */
export function checksumAdd(buf: Uint8Array, off: number, len: number, sum = 0): number {
  let s = sum;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) s += ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
  if (i < end) s += (buf[i] ?? 0) << 8;
  // Fold now and then so the running sum stays an exact small integer whatever the length.
  return (s & 0xffff) + Math.floor(s / 0x10000);
}

/** Adds a 16-bit word to a running sum. */
export function checksumAddWord(word: number, sum = 0): number {
  return sum + (word & 0xffff);
}

/** Folds the running sum to 16 bits and complements it: the value to put in a checksum field. */
export function checksumFinish(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}
