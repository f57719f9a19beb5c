// SPDX-License-Identifier: UNLICENSED
// What the host says about a provisioning target: block device or file, its size, where it (or a loop
// device backed by it) is mounted, and which disk holds this host's root. Read from /proc and /sys.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseMounts, type TargetFacts } from '../core/target-checks.js';

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
