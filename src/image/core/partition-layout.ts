// SPDX-License-Identifier: UNLICENSED
// The rockchip sysupgrade image layout (OpenWrt target/linux/rockchip/image, gen_image_generic.sh): an MBR,
// 32 MiB reserved for idbloader/U-Boot, p1 "kernel" (ext4, KERNEL_PARTSIZE) and p2 rootfs
// (ROOTFS_PARTSIZE), both type 0x83 and aligned to 32 MiB. Pure: `sfdisk -J` JSON in, findings out.
import { ImageError } from './errors.js';

export const SECTOR = 512;
export const MIB = 1024 * 1024;
export const ROCKCHIP_ALIGN_MIB = 32;

export interface PartitionTable {
  readonly label: string;
  readonly partitions: readonly { readonly start: number; readonly size: number; readonly type: string }[];
}

export function parseSfdiskJson(text: string): PartitionTable {
  const raw = JSON.parse(text) as { partitiontable?: { label?: string; partitions?: { start: number; size: number; type: string }[] } };
  const pt = raw.partitiontable;
  if (!pt) throw new ImageError('image-layout', 'sfdisk output has no partitiontable');
  return { label: pt.label ?? '', partitions: (pt.partitions ?? []).map((p) => ({ start: p.start, size: p.size, type: String(p.type) })) };
}

export interface ExpectedLayout {
  readonly kernelPartsizeMib: number;
  readonly rootfsPartsizeMib: number;
}

/** Every way the table differs from the rockchip layout; empty when it matches. */
export function checkRockchipLayout(pt: PartitionTable, want: ExpectedLayout): string[] {
  const problems: string[] = [];
  if (pt.label !== 'dos') problems.push(`partition table is "${pt.label}", expected an MBR ("dos")`);
  if (pt.partitions.length !== 2) problems.push(`${pt.partitions.length} partitions, expected 2`);
  const [p1, p2] = pt.partitions;
  const mib = (sectors: number): number => (sectors * SECTOR) / MIB;
  if (p1) {
    if (mib(p1.start) !== ROCKCHIP_ALIGN_MIB) problems.push(`p1 starts at ${mib(p1.start)} MiB, expected ${ROCKCHIP_ALIGN_MIB} MiB`);
    if (mib(p1.size) !== want.kernelPartsizeMib) problems.push(`p1 is ${mib(p1.size)} MiB, expected ${want.kernelPartsizeMib} MiB`);
    if (p1.type !== '83') problems.push(`p1 type ${p1.type}, expected 83`);
  }
  if (p2) {
    const expectStart = Math.ceil((ROCKCHIP_ALIGN_MIB + want.kernelPartsizeMib) / ROCKCHIP_ALIGN_MIB) * ROCKCHIP_ALIGN_MIB;
    if (mib(p2.start) !== expectStart) problems.push(`p2 starts at ${mib(p2.start)} MiB, expected ${expectStart} MiB`);
    if (mib(p2.size) !== want.rootfsPartsizeMib)
      problems.push(`p2 is ${mib(p2.size)} MiB, expected ROOTFS_PARTSIZE ${want.rootfsPartsizeMib} MiB`);
    if (p2.type !== '83') problems.push(`p2 type ${p2.type}, expected 83`);
  }
  return problems;
}
