// SPDX-License-Identifier: UNLICENSED
// Write-then-rename so a reader (or the next boot) sees the old file or the new one, never half of one.
import { open, rename } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFileDurably(tmp, data, 0o644);
  await rename(tmp, file);
  await syncDir(dirname(file));
}

/** Writes `file` (created with `mode`, or truncated) and syncs it to disk before closing. */
export async function writeFileDurably(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(file, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory, so that a rename or a new file in it survives power loss. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
