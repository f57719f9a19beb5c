// SPDX-License-Identifier: UNLICENSED
// Write-then-rename so a reader (or the next boot) sees the old file or the new one, never half of one.
import { open, rename } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  // fsync the directory so the rename itself survives power loss.
  const dh = await open(dirname(file), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
