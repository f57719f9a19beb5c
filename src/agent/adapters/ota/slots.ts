// SPDX-License-Identifier: UNLICENSED
// A/B agent slots on disk:  <root>/slots/{a,b}/  and  <root>/current -> slots/<x>  (relative symlink).
// Switching writes a new link beside `current` and renames it over, which is atomic on POSIX.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConnectorError, isErrno } from '../../../shared/errors.js';
import type { SlotName } from '../../core/ota/state.js';
import type { SlotStore as CoreSlotStore } from '../../core/ota/updater.js';

export const VERSION_FILE = 'VERSION';
export const MANIFEST_FILE = 'release.json';

/** The slots on disk: the updater's port, plus where they live. */
export interface SlotStore extends CoreSlotStore {
  readonly root: string;
  slotDir(slot: SlotName): string;
}

export function openSlotStore(root: string): SlotStore {
  const slotDir = (slot: SlotName): string => join(root, 'slots', slot);
  const link = join(root, 'current');
  return {
    root,
    slotDir,
    async current() {
      let target: string;
      try {
        target = await readlink(link);
      } catch (e) {
        throw new ConnectorError('CK_ERR_OTA_STATE', `${link} is not a symlink to slots/a or slots/b; run the factory install`, {
          cause: e,
        });
      }
      const m = /(?:^|\/)slots\/([ab])\/?$/.exec(target);
      if (!m) throw new ConnectorError('CK_ERR_OTA_STATE', `${link} points to "${target}", expected slots/a or slots/b`);
      return m[1] as SlotName;
    },
    async versionOf(slot) {
      try {
        return (await readFile(join(slotDir(slot), VERSION_FILE), 'utf8')).trim();
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return undefined;
        throw e;
      }
    },
    async install(slot, artifactFile, name, version, manifest) {
      // Build beside the slot and rename in, so a half-copied slot never carries a VERSION file.
      const dir = slotDir(slot);
      const tmp = `${dir}.new`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      await copyFile(artifactFile, join(tmp, name));
      // The download cache file is 0644; the supervisor only runs an executable slot binary.
      await chmod(join(tmp, name), 0o755);
      await writeFile(join(tmp, MANIFEST_FILE), manifest);
      await writeFile(join(tmp, VERSION_FILE), version + '\n');
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
    },
    async switchTo(slot) {
      const tmp = `${link}.new`;
      await rm(tmp, { force: true });
      await symlink(`slots/${slot}`, tmp);
      await rename(tmp, link);
    },
  };
}

/** Sets up slot a with a first version and `current` -> slots/a (factory install, tests). */
export async function initSlots(root: string, version: string, files: Readonly<Record<string, string | Buffer>>): Promise<void> {
  const dir = join(root, 'slots', 'a');
  await mkdir(dir, { recursive: true });
  await mkdir(join(root, 'slots', 'b'), { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  await writeFile(join(dir, VERSION_FILE), version + '\n');
  await rm(join(root, 'current'), { force: true });
  await symlink('slots/a', join(root, 'current'));
}

/** Streams, so a 100 MB sysupgrade image is never held in memory. */
export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}
