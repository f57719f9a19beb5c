// SPDX-License-Identifier: UNLICENSED
// The `sha256sums` list OpenWrt publishes next to its images (`<hex> *<file>` per line, as written by
// `sha256sum -b`). Pure: text in, a map out.
import { ImageError } from './errors.js';

export type Sha256Sums = ReadonlyMap<string, string>;

export function parseSha256Sums(text: string): Sha256Sums {
  const out = new Map<string, string>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.replace(/\r$/, ''));
    if (!m) throw new ImageError('not-in-sums', `sha256sums line ${i + 1} is not "<sha256> *<file>": ${JSON.stringify(line.slice(0, 80))}`);
    const file = (m[2] as string).replace(/^\.\//, '');
    out.set(file, (m[1] as string).toLowerCase());
  });
  return out;
}

export function formatSha256Sums(entries: Iterable<readonly [file: string, sha256: string]>): string {
  return [...entries]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([f, h]) => `${h} *${f}\n`)
    .join('');
}
