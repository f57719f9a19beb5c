// SPDX-License-Identifier: UNLICENSED
// OpenWrt appends fwtool chunks (metadata JSON, signature) after the gzip stream of a sysupgrade image.
// Each chunk ends in a 16-byte big-endian trailer: magic "FWx0", crc32, type, pad[3], size, where size
// counts the whole chunk including the trailer. Stripping them leaves the plain .img.gz.

export const FWTOOL_MAGIC = 0x46577830;
const TRAILER_LEN = 16;

/** Length of the image data before any fwtool chunks; `readAt` returns `len` bytes at `pos`. */
export function fwtoolDataLength(size: number, readAt: (pos: number, len: number) => Buffer): number {
  let end = size;
  for (let i = 0; i < 8 && end >= TRAILER_LEN; i++) {
    const t = readAt(end - TRAILER_LEN, TRAILER_LEN);
    if (t.length < TRAILER_LEN || t.readUInt32BE(0) !== FWTOOL_MAGIC) break;
    const chunk = t.readUInt32BE(12);
    if (chunk < TRAILER_LEN || chunk > end) break;
    end -= chunk;
  }
  return end;
}
