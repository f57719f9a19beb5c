// SPDX-License-Identifier: UNLICENSED
// The FILES tree handed to the ImageBuilder: firmware/rootfs-overlay plus generated files (agent binary,
// glibc runtime, trust anchors, OTA keys), listed file by file for the build manifest, normalised (modes,
// mtimes = SOURCE_DATE_EPOCH) so the same inputs give the same tree, shell scripts syntax-checked, and
// packed reproducibly. The rules it must satisfy are core/overlay.ts's.
import { createHash } from 'node:crypto';
import { chmod, cp, lstat, readFile, readdir, utimes, lutimes } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { ImageError } from '../core/errors.js';
import type { OverlayEntry } from '../core/overlay.js';

export async function copyTree(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true, preserveTimestamps: false, verbatimSymlinks: true });
}

export async function listOverlay(root: string): Promise<OverlayEntry[]> {
  const out: OverlayEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) out.push({ path: p, type: 'symlink', mode, size: 0 });
      else if (st.isDirectory()) {
        out.push({ path: p, type: 'dir', mode, size: 0 });
        await walk(p);
      } else {
        const bytes = await readFile(join(root, p));
        out.push({ path: p, type: 'file', mode, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
    }
  };
  await walk('');
  return out;
}

/** Fixed modes (0755 for dirs and anything executable, 0644 otherwise) and mtimes. */
export async function normaliseOverlay(root: string, epochS: number): Promise<void> {
  const entries = await listOverlay(root);
  for (const e of [...entries].reverse()) {
    const p = join(root, e.path);
    if (e.type === 'symlink') {
      await lutimes(p, epochS, epochS);
      continue;
    }
    const exe = e.type === 'dir' || (parseInt(e.mode, 8) & 0o111) !== 0;
    await chmod(p, exe ? 0o755 : 0o644);
    await utimes(p, epochS, epochS);
  }
  await chmod(root, 0o755);
  await utimes(root, epochS, epochS);
}

/** Checks every shell script in the overlay with `sh -n`, so a typo fails the build, not the device. */
export async function checkScripts(root: string, entries: readonly OverlayEntry[]): Promise<void> {
  const bad: string[] = [];
  for (const e of entries) {
    if (e.type !== 'file' || !/^(etc\/init\.d|etc\/uci-defaults|etc\/hotplug\.d|lib\/upgrade)\//.test(e.path)) continue;
    const head = (await readFile(join(root, e.path))).subarray(0, 2).toString('latin1');
    if (head !== '#!' && !e.path.startsWith('etc/uci-defaults/')) continue;
    const r = await exec('sh', ['-n', join(root, e.path)], { allowFailure: true });
    if (r.code !== 0) bad.push(`/${e.path}: ${r.stderr.trim()}`);
  }
  if (bad.length > 0) throw new ImageError('overlay-invalid', `shell syntax errors in the overlay:\n  ${bad.join('\n  ')}`);
}

/** A byte-reproducible tar.gz of the overlay (sorted, owner 0, mtime = epoch, no gzip timestamp). */
export async function packOverlay(root: string, out: string, epochS: number): Promise<void> {
  await exec('sh', [
    '-c',
    'tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner --mtime="@$2" -C "$1" -cf - . | gzip -n -9 > "$3"',
    'pack',
    root,
    String(epochS),
    out,
  ]);
}
