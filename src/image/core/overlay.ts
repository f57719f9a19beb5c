// SPDX-License-Identifier: UNLICENSED
// The rootfs overlay's rules, free of I/O: what an overlay must not contain (a /var directory, a whole
// /etc/config/network), one digest over its entries for the build manifest, and the build-time settings
// written into /etc/config/connector. adapters/overlay.ts walks, normalises and packs the tree.
import { createHash } from 'node:crypto';
import { ImageError } from './errors.js';

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

export function checkOverlay(entries: readonly OverlayEntry[]): void {
  const problems: string[] = [];
  for (const e of entries) {
    for (const [re, why] of FORBIDDEN) if (re.test(e.path)) problems.push(`/${e.path}: ${why}`);
  }
  if (problems.length > 0) throw new ImageError('overlay-invalid', `rootfs overlay rejected:\n  ${problems.join('\n  ')}`);
}

/** One hash over paths, types, modes and contents: equal trees give equal digests. */
export function overlayDigest(entries: readonly OverlayEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(`${e.type} ${e.mode} ${e.path} ${e.sha256 ?? ''}\n`);
  return h.digest('hex');
}

/**
 * Writes the build time into /etc/config/connector's `enroll.min_time`: the agent treats an earlier clock
 * as unset (no RTC on the R3S), and the image cannot be older than its own build.
 */
export function stampMinTime(uciText: string, epochS: number): string {
  const re = /^(config enroll\b[^\n]*\n(?:(?!config )[^\n]*\n)*?\s*option min_time )'[^'\n]*'/m;
  if (!re.test(uciText)) {
    throw new ImageError(
      'overlay-invalid',
      "/etc/config/connector has no `option min_time` in its `config enroll` section; the build writes the image's build time there",
    );
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
    if (!/^tls:\/\/[A-Za-z0-9.:[\]-]+(:\d+)?$/.test(u))
      throw new ImageError('overlay-invalid', `--headend "${u}" must be tls://host[:port]`);
  }
  const re = /^config agent\b[^\n]*\n/m;
  if (!re.test(uciText)) throw new ImageError('overlay-invalid', '/etc/config/connector has no `config agent` section');
  return uciText.replace(re, (head) => head + urls.map((u) => `\tlist headend '${u}'\n`).join(''));
}
