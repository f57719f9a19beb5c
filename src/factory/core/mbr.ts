// SPDX-License-Identifier: UNLICENSED
// Just enough of the MBR partition table (sector 0) to know where the first partition starts, so the
// factory block is never written over partition data. Pure.

export interface MbrPartition {
  index: number;
  type: number;
  startByte: number;
  sizeBytes: number;
}

export type MbrResult = { ok: true; partitions: MbrPartition[]; protectiveGpt: boolean } | { ok: false; reason: string };

const SECTOR = 512;

export function parseMbr(sector0: Uint8Array): MbrResult {
  const b = Buffer.from(sector0.buffer, sector0.byteOffset, sector0.byteLength);
  if (b.length < SECTOR) return { ok: false, reason: 'shorter than one sector' };
  if (b[510] !== 0x55 || b[511] !== 0xaa) return { ok: false, reason: 'no MBR boot signature (55 aa at byte 510)' };
  const partitions: MbrPartition[] = [];
  let protectiveGpt = false;
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = b[e + 4] ?? 0;
    const start = b.readUInt32LE(e + 8);
    const count = b.readUInt32LE(e + 12);
    if (type === 0 || count === 0) continue;
    if (type === 0xee) protectiveGpt = true;
    partitions.push({ index: i + 1, type, startByte: start * SECTOR, sizeBytes: count * SECTOR });
  }
  return { ok: true, partitions, protectiveGpt };
}

/** Lowest partition start in bytes, or undefined when the table is empty. */
export function firstPartitionStart(r: MbrResult): number | undefined {
  if (!r.ok || r.partitions.length === 0) return undefined;
  return Math.min(...r.partitions.map((p) => p.startByte));
}
