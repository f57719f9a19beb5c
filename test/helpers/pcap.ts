// SPDX-License-Identifier: UNLICENSED
// A tiny libpcap file reader/writer (the classic format tcpdump -w writes, not pcapng): enough to feed
// captured kernel frames to our decoders and our frames to tshark.

export const LINKTYPE_ETHERNET = 1;

export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  tsUs: number;
  /** Original length on the wire (may exceed data.length when the snap length cut it). */
  origLen: number;
  data: Buffer;
}

export interface PcapFile {
  linkType: number;
  snapLen: number;
  records: PcapRecord[];
}

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

/** Parses a whole pcap file; throws on anything that is not one (test input, not data-path input). */
export function readPcap(file: Buffer): PcapFile {
  if (file.length < 24) throw new Error(`pcap: ${file.length} bytes is shorter than the 24-byte file header`);
  let le: boolean;
  let nanos: boolean;
  const be = file.readUInt32BE(0);
  const lem = file.readUInt32LE(0);
  if (lem === MAGIC_US || lem === MAGIC_NS) {
    le = true;
    nanos = lem === MAGIC_NS;
  } else if (be === MAGIC_US || be === MAGIC_NS) {
    le = false;
    nanos = be === MAGIC_NS;
  } else {
    throw new Error(`pcap: bad magic 0x${be.toString(16)} (pcapng is not supported; use tcpdump -w)`);
  }
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const snapLen = u32(16);
  const linkType = u32(20) & 0x0fff_ffff;
  const records: PcapRecord[] = [];
  let off = 24;
  while (off < file.length) {
    if (file.length - off < 16) throw new Error(`pcap: truncated record header at offset ${off}`);
    const sec = u32(off);
    const frac = u32(off + 4);
    const inclLen = u32(off + 8);
    const origLen = u32(off + 12);
    off += 16;
    if (file.length - off < inclLen) throw new Error(`pcap: record at offset ${off - 16} claims ${inclLen} bytes past the end`);
    records.push({ tsUs: sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac), origLen, data: file.subarray(off, off + inclLen) });
    off += inclLen;
  }
  return { linkType, snapLen, records };
}

/** Writes Ethernet frames as a little-endian microsecond pcap, one record per frame, 1 ms apart. */
export function writePcap(frames: readonly Uint8Array[], startUs = 1_700_000_000_000_000, linkType = LINKTYPE_ETHERNET): Buffer {
  const parts: Buffer[] = [];
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(MAGIC_US, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(262_144, 16);
  hdr.writeUInt32LE(linkType, 20);
  parts.push(hdr);
  frames.forEach((f, i) => {
    const ts = startUs + i * 1000;
    const r = Buffer.alloc(16);
    r.writeUInt32LE(Math.floor(ts / 1e6), 0);
    r.writeUInt32LE(ts % 1e6, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    parts.push(r, Buffer.from(f.buffer, f.byteOffset, f.length));
  });
  return Buffer.concat(parts);
}
