// SPDX-License-Identifier: UNLICENSED
// The metadata trailer OpenWrt's `fwtool -I` appends to a sysupgrade image (after gzip, which ignores
// trailing bytes), and that `fwtool -i` / sysupgrade read back. Layout, from the end of the file:
//   ... | header{version u32=0, flags u32} | JSON | trailer{magic "FWx0", crc32, type u8, pad[3], size}
// All integers are big-endian. `size` counts header + JSON + trailer. `crc32` is the reflected CRC-32
// (poly 0xEDB88320) seeded with ~0 and never inverted at the end, over every byte before the trailer.
// A signature block (type 0) may follow the metadata block; readers skip it. Pure: bytes in, bytes out.
import { crc32 } from 'node:zlib';

const MAGIC = 0x46577830; // "FWx0"
const TRAILER_LEN = 16;
const HEADER_LEN = 8;
const TYPE_SIGNATURE = 0;
const TYPE_INFO = 1;

export interface FwMetadata {
  readonly metadata_version?: string;
  readonly compat_version?: string;
  readonly supported_devices?: readonly string[];
  readonly version?: Readonly<Record<string, string>>;
  readonly [key: string]: unknown;
}

/** fwtool's CRC state update: zlib's crc32 inverts on the way in and out, fwtool does neither. */
function crcUpdate(state: number, data: Uint8Array): number {
  return ~crc32(data, ~state >>> 0) >>> 0;
}

export function appendFwMetadata(image: Buffer, metadata: FwMetadata): Buffer {
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  const header = Buffer.alloc(HEADER_LEN);
  let crc = crcUpdate(0xffffffff, image);
  crc = crcUpdate(crc, header);
  crc = crcUpdate(crc, json);
  const trailer = Buffer.alloc(TRAILER_LEN);
  trailer.writeUInt32BE(MAGIC, 0);
  trailer.writeUInt32BE(crc, 4);
  trailer.writeUInt8(TYPE_INFO, 8);
  trailer.writeUInt32BE(HEADER_LEN + json.length + TRAILER_LEN, 12);
  return Buffer.concat([image, header, json, trailer]);
}

export type ReadMetadata =
  | { ok: true; metadata: FwMetadata; payloadLength: number }
  | { ok: false; problem: 'no-trailer' | 'bad-crc' | 'bad-size' | 'bad-json' | 'bad-header' };

export function readFwMetadata(file: Buffer): ReadMetadata {
  let end = file.length;
  for (let blocks = 0; blocks < 4; blocks++) {
    if (end < TRAILER_LEN) return { ok: false, problem: 'no-trailer' };
    const tr = file.subarray(end - TRAILER_LEN, end);
    if (tr.readUInt32BE(0) !== MAGIC) return { ok: false, problem: 'no-trailer' };
    const size = tr.readUInt32BE(12);
    if (size < TRAILER_LEN || size > end) return { ok: false, problem: 'bad-size' };
    if (crcUpdate(0xffffffff, file.subarray(0, end - TRAILER_LEN)) !== tr.readUInt32BE(4)) return { ok: false, problem: 'bad-crc' };
    const start = end - size;
    if (tr.readUInt8(8) === TYPE_SIGNATURE) {
      end = start;
      continue;
    }
    if (tr.readUInt8(8) !== TYPE_INFO || size < HEADER_LEN + TRAILER_LEN) return { ok: false, problem: 'bad-size' };
    if (file.readUInt32BE(start) !== 0) return { ok: false, problem: 'bad-header' };
    try {
      const parsed: unknown = JSON.parse(file.subarray(start + HEADER_LEN, end - TRAILER_LEN).toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, problem: 'bad-json' };
      return { ok: true, metadata: parsed as FwMetadata, payloadLength: start };
    } catch {
      return { ok: false, problem: 'bad-json' };
    }
  }
  return { ok: false, problem: 'no-trailer' };
}

/**
 * The image without the fwtool signature blocks (type 0) that follow its metadata block: the bytes an
 * ImageBuilder without a build key writes. Only intact blocks (magic, size and CRC good) are removed; the
 * metadata block and everything before it are untouched, so its CRC still holds.
 */
export function dropFwSignatures(file: Buffer): { bytes: Buffer; dropped: number } {
  let end = file.length;
  let dropped = 0;
  for (; dropped < 4; dropped++) {
    if (end < TRAILER_LEN) break;
    const tr = file.subarray(end - TRAILER_LEN, end);
    if (tr.readUInt32BE(0) !== MAGIC || tr.readUInt8(8) !== TYPE_SIGNATURE) break;
    const size = tr.readUInt32BE(12);
    if (size < TRAILER_LEN || size > end) break;
    if (crcUpdate(0xffffffff, file.subarray(0, end - TRAILER_LEN)) !== tr.readUInt32BE(4)) break;
    end -= size;
  }
  return { bytes: dropped === 0 ? file : file.subarray(0, end), dropped };
}
