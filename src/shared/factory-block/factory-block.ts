// SPDX-License-Identifier: UNLICENSED
// The factory block: the unit's birth certificate, written once at the factory into the raw gap between
// the rockchip bootloader and the first partition. Pure codec: bytes in, bytes out, no I/O.
//
// Byte layout (all integers big-endian), version 1:
//   0   4  magic "CKFB" (43 4B 46 42)
//   4   2  format version (1)
//   6   2  header length in bytes (16); readers skip unknown header bytes of later versions
//   8   4  payload length N
//   12  4  reserved, zero
//   16  N  payload: UTF-8 JSON object (FactoryData below)
//   16+N 32 SHA-256 over bytes 0 .. 16+N-1 (header and payload)
// The whole block must fit in FACTORY_REGION_SIZE; everything after it in the region is zero.
import { createHash } from 'node:crypto';

export const FACTORY_MAGIC = Buffer.from('CKFB', 'ascii');
export const FACTORY_VERSION = 1;
export const FACTORY_HEADER_LEN = 16;
export const FACTORY_CHECKSUM_LEN = 32;
/**
 * Raw byte offset of the block on the eMMC/SD: 24 MiB. OpenWrt's rockchip image puts idbloader at
 * sector 64 (32 KiB) and u-boot.itb at sector 16384 (8 MiB); Rockchip's own layout reserves 8-12 MiB for
 * U-Boot and 12-16 MiB for the trust image, and p1 starts at 32 MiB. 24 MiB sits 8 MiB clear of both.
 */
export const FACTORY_BLOCK_OFFSET = 24 * 1024 * 1024;
/** The region reserved for the block: 24 MiB .. 25 MiB. */
export const FACTORY_REGION_SIZE = 1024 * 1024;
export const FACTORY_MAX_PAYLOAD = FACTORY_REGION_SIZE - FACTORY_HEADER_LEN - FACTORY_CHECKSUM_LEN;

export interface FactoryData {
  serial: string;
  hwRev: string;
  /** MAC addresses known at the station, lowercase colon form; may be empty. */
  macs: string[];
  /** PEM: the IDevID certificate first, then its issuers up to the factory CA. */
  idevidChainPem: string;
  /** PEM PKCS#8: the IDevID private key (the R3S has no secure element; see docs/provisioning.md). */
  idevidKeyPem: string;
  /** EST base URL, e.g. https://est.dc1.example.net:8443/.well-known/est */
  estUrl: string;
  /** PEM: the DC trust anchor that signs the EST server and headend certificates. */
  dcAnchorPem: string;
  batch: string;
  station: string;
  /** ISO 8601 time of provisioning. */
  createdAt: string;
}

export type DecodeResult =
  | { ok: true; data: FactoryData; length: number; checksum: string }
  | { ok: false; reason: 'empty' | 'no-magic' | 'bad-version' | 'bad-length' | 'bad-checksum' | 'bad-payload'; detail: string };

const STRING_FIELDS = [
  'serial',
  'hwRev',
  'idevidChainPem',
  'idevidKeyPem',
  'estUrl',
  'dcAnchorPem',
  'batch',
  'station',
  'createdAt',
] as const;

/** Checks field types and shapes; returns a problem description or undefined. */
export function validateFactoryData(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'payload is not a JSON object';
  const o = v as Record<string, unknown>;
  for (const k of STRING_FIELDS) if (typeof o[k] !== 'string') return `field "${k}" must be a string`;
  if (!Array.isArray(o['macs']) || o['macs'].some((m) => typeof m !== 'string')) return 'field "macs" must be a list of strings';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o['serial'] as string)) return 'field "serial" is not a valid serial';
  if (!(o['idevidChainPem'] as string).includes('BEGIN CERTIFICATE')) return 'field "idevidChainPem" holds no certificate';
  if (!(o['idevidKeyPem'] as string).includes('PRIVATE KEY')) return 'field "idevidKeyPem" holds no private key';
  if (!(o['dcAnchorPem'] as string).includes('BEGIN CERTIFICATE')) return 'field "dcAnchorPem" holds no certificate';
  try {
    const u = new URL(o['estUrl'] as string);
    if (u.protocol !== 'https:') return 'field "estUrl" must be an https:// URL';
  } catch {
    return 'field "estUrl" is not a URL';
  }
  return undefined;
}

export function encodeFactoryBlock(data: FactoryData): Buffer {
  const problem = validateFactoryData(data);
  if (problem) throw new TypeError(`factory data: ${problem}`);
  const payload = Buffer.from(JSON.stringify(data), 'utf8');
  if (payload.length > FACTORY_MAX_PAYLOAD) {
    throw new RangeError(`factory payload is ${payload.length} bytes; at most ${FACTORY_MAX_PAYLOAD} fit in the region`);
  }
  const head = Buffer.alloc(FACTORY_HEADER_LEN);
  FACTORY_MAGIC.copy(head, 0);
  head.writeUInt16BE(FACTORY_VERSION, 4);
  head.writeUInt16BE(FACTORY_HEADER_LEN, 6);
  head.writeUInt32BE(payload.length, 8);
  const body = Buffer.concat([head, payload]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Decodes a block from the start of `region`; never throws. */
export function decodeFactoryBlock(region: Uint8Array): DecodeResult {
  const buf = Buffer.from(region.buffer, region.byteOffset, region.byteLength);
  if (buf.length < FACTORY_HEADER_LEN) return { ok: false, reason: 'bad-length', detail: `only ${buf.length} bytes` };
  if (!buf.subarray(0, 4).equals(FACTORY_MAGIC)) {
    const empty = buf.subarray(0, FACTORY_HEADER_LEN).every((b) => b === 0);
    return empty
      ? { ok: false, reason: 'empty', detail: 'the region is blank (all zero): no factory block written' }
      : { ok: false, reason: 'no-magic', detail: `magic is ${buf.subarray(0, 4).toString('hex')}, expected 434b4642 ("CKFB")` };
  }
  const version = buf.readUInt16BE(4);
  if (version !== FACTORY_VERSION)
    return { ok: false, reason: 'bad-version', detail: `format version ${version}; this build reads ${FACTORY_VERSION}` };
  const headerLen = buf.readUInt16BE(6);
  const len = buf.readUInt32BE(8);
  if (headerLen < FACTORY_HEADER_LEN || len > FACTORY_MAX_PAYLOAD || headerLen + len + FACTORY_CHECKSUM_LEN > buf.length) {
    return { ok: false, reason: 'bad-length', detail: `header ${headerLen} + payload ${len} bytes do not fit in ${buf.length} bytes` };
  }
  const body = buf.subarray(0, headerLen + len);
  const want = buf.subarray(headerLen + len, headerLen + len + FACTORY_CHECKSUM_LEN);
  const got = createHash('sha256').update(body).digest();
  if (!got.equals(want)) return { ok: false, reason: 'bad-checksum', detail: 'SHA-256 does not match: the block is damaged' };
  let data: unknown;
  try {
    data = JSON.parse(buf.subarray(headerLen, headerLen + len).toString('utf8'));
  } catch (e) {
    return { ok: false, reason: 'bad-payload', detail: `payload is not JSON: ${(e as Error).message}` };
  }
  const problem = validateFactoryData(data);
  if (problem) return { ok: false, reason: 'bad-payload', detail: problem };
  return { ok: true, data: data as FactoryData, length: headerLen + len + FACTORY_CHECKSUM_LEN, checksum: got.toString('hex') };
}
