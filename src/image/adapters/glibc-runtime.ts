// SPDX-License-Identifier: UNLICENSED
// The glibc island the agent binary runs on: OpenWrt is musl-only, official Node is glibc, so the loader
// and the libraries node needs are taken from pinned Debian arm64 packages and installed at a fixed
// absolute path (the binary's PT_INTERP and rpath point there). Their copyright files go along (LGPL).
import { chmod, copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { ImageError } from '../core/errors.js';

/** What node 24 (linux-arm64) needs: its DT_NEEDED entries plus the loader itself. */
export const RUNTIME_LIBS = [
  'ld-linux-aarch64.so.1',
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'libgcc_s.so.1',
  'libstdc++.so.6',
] as const;

const LIB_DIRS = ['lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu'];

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Unpacks the .deb files into `scratch` and copies the runtime libraries (symlinks resolved) into `dest`,
 * with each package's copyright file under dest/licenses/<package>.
 */
export async function assembleGlibcRuntime(debs: readonly string[], scratch: string, dest: string): Promise<string[]> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  for (const deb of debs) await exec('dpkg-deb', ['-x', deb, scratch]);
  await mkdir(join(dest, 'licenses'), { recursive: true });
  const missing: string[] = [];
  const copied: string[] = [];
  for (const lib of RUNTIME_LIBS) {
    let found: string | undefined;
    for (const d of LIB_DIRS) {
      if (await isFile(join(scratch, d, lib))) {
        found = join(scratch, d, lib);
        break;
      }
    }
    if (!found) {
      missing.push(lib);
      continue;
    }
    await copyFile(found, join(dest, lib)); // copyFile follows symlinks: the real library lands under its soname
    // The kernel opens PT_INTERP with exec permission checks (open_exec); qemu-user does not, so a test
    // under qemu would not notice a loader without its x bit.
    await chmod(join(dest, lib), 0o755);
    copied.push(lib);
  }
  if (missing.length > 0) {
    throw new ImageError(
      'sea-failed',
      `glibc runtime packages lack ${missing.join(', ')}; the lock file's "glibc-runtime" inputs must be libc6, libstdc++6 and libgcc-s1 for arm64`,
    );
  }
  const docs = join(scratch, 'usr/share/doc');
  for (const pkg of (await readdir(docs).catch(() => [] as string[])).sort()) {
    if (await isFile(join(docs, pkg, 'copyright'))) await copyFile(join(docs, pkg, 'copyright'), join(dest, 'licenses', pkg));
  }
  return copied;
}
