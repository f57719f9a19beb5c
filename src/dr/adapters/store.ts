// SPDX-License-Identifier: UNLICENSED
// The drill book (drills.json) beside the registry, changed together with it under the registry's lock:
// the book is written first, so a crash in between leaves a drill whose sandbox segment is missing (which
// ending it tolerates), never a sandbox segment no drill accounts for.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConnectorError, errorMessage } from '../../shared/errors.js';
import { readRegistryFile, updateRegistryFile } from '../../shared/registry/registry-file.js';
import type { Registry } from '../../shared/registry/registry.js';
import { EMPTY_BOOK, parseDrillBook, type DrillBook } from '../core/drill.js';

export interface DrillFiles {
  registry: string;
  book: string;
}

export function drillFiles(registry: string, book?: string): DrillFiles {
  const reg = resolve(registry);
  return { registry: reg, book: resolve(book ?? join(dirname(reg), 'drills.json')) };
}

export function readBook(path: string): DrillBook {
  if (!existsSync(path)) return EMPTY_BOOK;
  try {
    return parseDrillBook(JSON.parse(readFileSync(path, 'utf8')));
  } catch (e) {
    if (e instanceof ConnectorError) throw e;
    throw new ConnectorError('CK_ERR_DRILL', `cannot read the drill book ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

function writeBook(path: string, book: DrillBook): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(book, null, 2) + '\n');
  renameSync(tmp, path);
}

export function readBoth(f: DrillFiles): { book: DrillBook; registry: Registry } {
  return { book: readBook(f.book), registry: readRegistryFile(f.registry) };
}

/** Read-modify-write of book and registry under the registry lock; returns what `change` returned. */
export async function updateBoth<T extends { book: DrillBook; registry: Registry }>(
  f: DrillFiles,
  change: (book: DrillBook, registry: Registry) => T,
): Promise<T> {
  let result: T | undefined;
  await updateRegistryFile(f.registry, (reg) => {
    result = change(readBook(f.book), reg);
    writeBook(f.book, result.book);
    return result.registry;
  });
  return result as T;
}
