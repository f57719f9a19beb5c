// SPDX-License-Identifier: UNLICENSED
// Notices a changed registry file without a signal: polls its mtime and size (works on every filesystem,
// and an atomic rename-over is seen like an edit). SIGHUP still reloads at once.
import { unwatchFile, watchFile, type Stats } from 'node:fs';

/** Calls `onChange` when the file's mtime or size changes; returns a stop function. */
export function watchRegistryFile(file: string, intervalMs: number, onChange: () => void): () => void {
  let lastStamp = '';
  const listener = (cur: Stats): void => {
    const stamp = `${cur.mtimeMs}:${cur.size}`;
    if (stamp !== lastStamp) {
      lastStamp = stamp;
      onChange();
    }
  };
  watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}
