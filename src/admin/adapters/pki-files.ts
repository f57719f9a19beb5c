// SPDX-License-Identifier: UNLICENSED
// Writes the DC PKI into a directory: keys 0600 (created with that mode, never briefly readable), the
// directory 0700 when created. Refuses to replace an existing file unless told to: a second `dc init`
// over a live PKI would strand every unit that pins the old DC CA.
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorError } from '../../shared/errors.js';
import type { PkiFile } from '../core/dc-pki.js';

/** Throws when any of `names` already exists in `dir`. */
export function refuseExisting(dir: string, names: readonly string[]): void {
  const present = names.filter((n) => existsSync(join(dir, n)));
  if (present.length > 0) {
    throw new ConnectorError(
      'CK_ERR_DC_PKI',
      `${dir} already holds ${present.join(', ')}: refusing to replace a PKI the units may pin (--force replaces it)`,
    );
  }
}

export function writePkiFiles(dir: string, files: readonly PkiFile[], force: boolean): void {
  if (!force) {
    refuseExisting(
      dir,
      files.map((f) => f.name),
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of files) {
    const path = join(dir, f.name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, f.pem, { mode: f.mode, flag: 'w' });
    chmodSync(tmp, f.mode); // the umask may have narrowed or the file existed
    renameSync(tmp, path);
  }
}
