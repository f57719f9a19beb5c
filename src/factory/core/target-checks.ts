// SPDX-License-Identifier: UNLICENSED
// Safety checks before the station writes anything: never a mounted device, never the host's own root
// disk, never a target too small for the image. adapters/target-facts.ts gathers the facts; the verdict
// here is pure.

export interface MountEntry {
  device: string;
  mountpoint: string;
}

/** /proc/mounts lines; octal escapes (\040 for space) are decoded. */
export function parseMounts(text: string): MountEntry[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[0] !== '')
    .map((f) => ({ device: unescape(f[0] ?? ''), mountpoint: unescape(f[1] ?? '') }));
}

export interface TargetFacts {
  /** Resolved path of the target. */
  path: string;
  kind: 'block' | 'file' | 'missing' | 'other';
  /** Bytes: the device size, or the current file size. */
  sizeBytes: number;
  /** Mount points that live on the target (its partitions, or a loop device backed by the file). */
  mountedAt: string[];
  /** For a block device: the whole disk it belongs to (itself, or the parent of a partition). */
  disk?: string;
  /** The disk holding "/" on this host, when it can be determined. */
  rootDisk?: string;
}

export type TargetProblem = { code: 'mounted' | 'root-disk' | 'too-small' | 'not-a-disk'; message: string };

export interface TargetNeeds {
  /** Bytes the target must hold (image end, or the factory region end). */
  minBytes: number;
  /** Whether the station will create or resize a regular file (then its current size does not matter). */
  fileMayGrow: boolean;
}

export function targetProblems(f: TargetFacts, needs: TargetNeeds): TargetProblem[] {
  const out: TargetProblem[] = [];
  if (f.kind === 'other') out.push({ code: 'not-a-disk', message: `${f.path} is neither a block device nor a regular file` });
  if (f.mountedAt.length > 0) {
    out.push({ code: 'mounted', message: `${f.path} is mounted (${f.mountedAt.join(', ')}); unmount it first` });
  }
  if (f.rootDisk !== undefined && (f.path === f.rootDisk || f.disk === f.rootDisk)) {
    out.push({ code: 'root-disk', message: `${f.path} holds this host's root filesystem; refusing to overwrite the station itself` });
  }
  const grows = f.kind === 'missing' || (f.kind === 'file' && needs.fileMayGrow);
  if (!grows && f.sizeBytes < needs.minBytes) {
    out.push({
      code: 'too-small',
      message: `${f.path} holds ${f.sizeBytes} bytes but ${needs.minBytes} are needed (${(needs.minBytes / 1048576).toFixed(1)} MiB)`,
    });
  }
  return out;
}
