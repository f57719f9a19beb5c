// SPDX-License-Identifier: UNLICENSED
// The OTA tools' files: inputs read with errors that name what was being read, release keys written
// without ever overwriting one, and the rollout state file (written atomically, so a restarted
// controller sees the old state or the new one).
import { readFile, stat, writeFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { ConnectorError, UsageError, isErrno } from '../../shared/errors.js';
import { parseRolloutState, type RolloutState } from '../core/rollout-state.js';
import type { RolloutStore } from '../core/rollout-run.js';

export async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new ConnectorError('CK_ERR_IO', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export async function readInputText(file: string, what: string): Promise<string> {
  return (await readInput(file, what)).toString('utf8');
}

export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Writes a new file; an existing one is a usage error (a release key is never overwritten). */
export async function writeNew(file: string, data: string, mode: number): Promise<void> {
  try {
    await writeFile(file, data, { flag: 'wx', mode });
  } catch (e) {
    if (isErrno(e, 'EEXIST')) throw new UsageError(`${file} already exists; refusing to overwrite a key`);
    throw new ConnectorError('CK_ERR_IO', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export async function loadRolloutState(file: string): Promise<RolloutState | undefined> {
  try {
    return parseRolloutState(await readFile(file, 'utf8'), file);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export function rolloutStateFile(file: string): RolloutStore {
  return { save: (s) => writeFileAtomic(file, JSON.stringify(s, null, 2) + '\n') };
}
