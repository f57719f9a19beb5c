// SPDX-License-Identifier: UNLICENSED
// The FILES tree handed to the ImageBuilder: firmware/rootfs-overlay plus generated files (agent binary,
// glibc runtime, trust anchors, OTA keys). Checked for what breaks an OpenWrt device (a /var directory, a
// whole /etc/config/network), then normalised (modes, mtimes = SOURCE_DATE_EPOCH) so the same inputs give
// the same tree, and described file by file for the build manifest.
import { createHash } from 'node:crypto';
import { chmod, cp, lstat, readFile, readdir, utimes, lutimes } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { ImageError } from '../core/errors.js';

export interface OverlayEntry {
  readonly path: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: string;
  readonly size: number;
  readonly sha256?: string;
}

/** Paths an overlay must not contain, with the reason the installer would see. */
const FORBIDDEN: readonly [RegExp, string][] = [
  [/^var(\/|$)/, '/var is a symlink to /tmp on OpenWrt; shipping it breaks boot'],
  [/^etc\/config\/network$/, 'a whole /etc/config/network bypasses board.d (ports, MACs); change it with uci in uci-defaults'],
  [/^etc\/config\/(dhcp|firewall)$/, 'a whole stock config file replaces the defaults of the release; change it with uci in uci-defaults'],
];

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

export function checkOverlay(entries: readonly OverlayEntry[]): void {
  const problems: string[] = [];
  for (const e of entries) {
    for (const [re, why] of FORBIDDEN) if (re.test(e.path)) problems.push(`/${e.path}: ${why}`);
  }
  if (problems.length > 0) throw new ImageError('overlay-invalid', `rootfs overlay rejected:\n  ${problems.join('\n  ')}`);
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

/** One hash over paths, types, modes and contents: equal trees give equal digests. */
export function overlayDigest(entries: readonly OverlayEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(`${e.type} ${e.mode} ${e.path} ${e.sha256 ?? ''}\n`);
  return h.digest('hex');
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

/**
 * Writes the build time into /etc/config/connector's `enroll.min_time`: the agent treats an earlier clock
 * as unset (no RTC on the R3S), and the image cannot be older than its own build.
 */
export function stampMinTime(uciText: string, epochS: number): string {
  const re = /^(config enroll\b[^\n]*\n(?:(?!config )[^\n]*\n)*?\s*option min_time )'[^'\n]*'/m;
  if (!re.test(uciText)) {
    throw new ImageError('overlay-invalid', "/etc/config/connector has no `option min_time` in its `config enroll` section; the build writes the image's build time there");
  }
  return uciText.replace(re, `$1'${epochS}'`);
}

/**
 * Lists the DC headends in /etc/config/connector's `config agent` section (build-time setting of a DR
 * provider's image: the units dial out to them once enrolled). Existing `list headend` lines are kept.
 */
export function stampHeadends(uciText: string, urls: readonly string[]): string {
  if (urls.length === 0) return uciText;
  for (const u of urls) {
    if (!/^tls:\/\/[A-Za-z0-9.:[\]-]+(:\d+)?$/.test(u)) throw new ImageError('overlay-invalid', `--headend "${u}" must be tls://host[:port]`);
  }
  const re = /^config agent\b[^\n]*\n/m;
  if (!re.test(uciText)) throw new ImageError('overlay-invalid', '/etc/config/connector has no `config agent` section');
  return uciText.replace(re, (head) => head + urls.map((u) => `\tlist headend '${u}'\n`).join(''));
}
