// SPDX-License-Identifier: UNLICENSED
// Wiring: the config's registry source -> the backend that serves it. Services call this once at start.
import type { Logger } from '../log.js';
import { FileRegistryStore } from './registry-file.js';
import { PostgresRegistryStore } from './registry-postgres.js';
import type { RegistrySource, RegistryStore } from './source.js';

export interface OpenRegistryOptions {
  readonly log?: Logger;
  /** File backend: how often its mtime is polled for `watch`. */
  readonly filePollMs?: number;
}

export async function openRegistryStore(source: RegistrySource, o: OpenRegistryOptions = {}): Promise<RegistryStore> {
  if (source.kind === 'file') return new FileRegistryStore(source.path, o.filePollMs);
  return PostgresRegistryStore.open(source.url, o.log ? { log: o.log } : {});
}
