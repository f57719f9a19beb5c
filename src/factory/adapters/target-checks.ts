// SPDX-License-Identifier: UNLICENSED
// Safety checks before the station writes anything: never a mounted device, never the host's own root
// disk, never a target too small for the image. Facts are gathered by a thin adapter; the verdict is pure.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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

export interface HostPaths {
  procMounts: string;
  sysClassBlock: string;
}

export const DEFAULT_HOST_PATHS: HostPaths = { procMounts: '/proc/mounts', sysClassBlock: '/sys/class/block' };

function blockName(devPath: string): string | undefined {
  try {
    return basename(realpathSync(devPath));
  } catch {
    return undefined;
  }
}

/** The whole-disk name for a block device name (vda1 -> vda, loop0p1 -> loop0, vda -> vda). */
function diskOf(name: string, h: HostPaths): string {
  const sys = join(h.sysClassBlock, name);
  if (existsSync(join(sys, 'partition'))) {
    try {
      // resolve the sysfs link first: join(sys, '..') would normalise lexically to /sys/class/block
      return basename(dirname(realpathSync(sys)));
    } catch {
      return name;
    }
  }
  return name;
}

function loopBackingFile(name: string, h: HostPaths): string | undefined {
  try {
    return readFileSync(join(h.sysClassBlock, name, 'loop', 'backing_file'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function gatherTargetFacts(target: string, h: HostPaths = DEFAULT_HOST_PATHS): TargetFacts {
  let path = target;
  try {
    path = realpathSync(target);
  } catch {
    // a target file that does not exist yet
  }
  const mounts = parseMounts(existsSync(h.procMounts) ? readFileSync(h.procMounts, 'utf8') : '');
  const root = mounts.filter((m) => m.mountpoint === '/').pop();
  const rootName = root && root.device.startsWith('/dev/') ? blockName(root.device) : undefined;
  const rootDisk = rootName ? `/dev/${diskOf(rootName, h)}` : undefined;
  let kind: TargetFacts['kind'] = 'missing';
  let sizeBytes = 0;
  const mountedAt: string[] = [];
  let disk: string | undefined;
  if (existsSync(path)) {
    const st = statSync(path);
    if (st.isBlockDevice()) {
      kind = 'block';
      const name = basename(path);
      try {
        sizeBytes = Number(readFileSync(join(h.sysClassBlock, name, 'size'), 'utf8').trim()) * 512;
      } catch {
        sizeBytes = 0;
      }
      const diskName = diskOf(name, h);
      disk = `/dev/${diskName}`;
      for (const m of mounts) {
        if (!m.device.startsWith('/dev/')) continue;
        const n = blockName(m.device);
        if (n !== undefined && (n === name || diskOf(n, h) === diskName)) mountedAt.push(m.mountpoint);
      }
    } else if (st.isFile()) {
      kind = 'file';
      sizeBytes = st.size;
      // an image file attached to a loop device that is (or whose partitions are) mounted
      let loops: string[] = [];
      try {
        loops = readdirSync(h.sysClassBlock).filter((n) => /^loop\d+$/.test(n) && loopBackingFile(n, h) === path);
      } catch {
        loops = [];
      }
      for (const m of mounts) {
        if (!m.device.startsWith('/dev/')) continue;
        const n = blockName(m.device);
        if (n !== undefined && loops.includes(diskOf(n, h))) mountedAt.push(m.mountpoint);
      }
    } else kind = 'other';
  }
  return { path, kind, sizeBytes, mountedAt, ...(disk ? { disk } : {}), ...(rootDisk ? { rootDisk } : {}) };
}
