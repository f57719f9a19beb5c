// SPDX-License-Identifier: UNLICENSED
// The embedded default storage of the registry: one JSON file an operator can edit by hand. Readers
// reload it when it changes; writers update it atomically (temp file + rename) under a lock file, so the
// EST server, the headend and the `connector registry` CLI can share it.
import {
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  unwatchFile,
  watchFile,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorError, isErrno } from '../errors.js';
import { EMPTY_REGISTRY, parseRegistry, type Registry } from './registry.js';
import { RegistryParseThread, RegistryThreadError } from './registry-parse-thread.js';
import type { RegistryStatus, RegistryStore } from './source.js';

export function readRegistryFile(path: string): Registry {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return EMPTY_REGISTRY;
    throw new ConnectorError('CK_ERR_REGISTRY', `cannot read registry ${path}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConnectorError('CK_ERR_REGISTRY', `registry ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseRegistry(doc);
}

const stampOf = (st: Pick<Stats, 'mtimeMs' | 'size' | 'ino'>): string => `${st.mtimeMs}:${st.size}:${st.ino}`;

/** The file's mtime, size and inode now ('missing' when absent): what says it changed. */
export function registryFileStamp(path: string): string {
  try {
    return stampOf(statSync(path));
  } catch {
    return 'missing';
  }
}

export function writeRegistryFile(path: string, reg: Registry): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(reg, null, 2) + '\n', { mode: 0o640 });
  renameSync(tmp, path);
}

/** Read-modify-write under `<path>.lock`; a lock older than 30 s is taken as left by a crash. */
export async function updateRegistryFile(path: string, change: (reg: Registry) => Registry): Promise<Registry> {
  const lock = `${path}.lock`;
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
      } catch {
        // the holder just released it
      }
      if (i > 200) throw new ConnectorError('CK_ERR_REGISTRY', `registry ${path} stays locked; remove ${lock} if no writer runs`);
      await sleep(25);
    }
  }
  try {
    const next = change(readRegistryFile(path));
    writeRegistryFile(path, next);
    return next;
  } finally {
    unlinkSync(lock);
  }
}

/** A reader that re-parses the file only when its mtime or size changed (cheap to call per request). */
export class RegistryWatcher {
  private stamp = '';
  private current: Registry = EMPTY_REGISTRY;
  constructor(readonly path: string) {}

  /** The file's mtime, size and inode now ('missing' when absent). */
  fileStamp(): string {
    return registryFileStamp(this.path);
  }

  /** The stamp of the registry last parsed ('' before the first read). */
  get loadedStamp(): string {
    return this.stamp;
  }

  get(): Registry {
    const stamp = this.fileStamp();
    if (stamp !== this.stamp) {
      this.current = readRegistryFile(this.path);
      this.stamp = stamp;
    }
    return this.current;
  }

  /** Forces a re-read (SIGHUP); keeps the last good registry and rethrows when the file is broken. */
  reload(): Registry {
    this.stamp = '';
    return this.get();
  }

  /** A registry parsed elsewhere (the parser thread) from the file as it was at `stamp`. */
  adopt(stamp: string, reg: Registry): void {
    this.stamp = stamp;
    this.current = reg;
  }
}

/**
 * The file backend behind RegistryStore: mtime-stamped reads, locked atomic writes, polling watch.
 * `reload()` parses in a thread of its own (the headend reloads with thousands of sessions up); when the
 * thread cannot run, it parses here as before.
 */
export class FileRegistryStore implements RegistryStore {
  readonly #watcher: RegistryWatcher;
  #thread: RegistryParseThread | null = null;
  #threadBroken = false;
  constructor(
    readonly path: string,
    private readonly pollMs = 2_000,
  ) {
    this.#watcher = new RegistryWatcher(path);
  }

  current(): Registry {
    return this.#watcher.get();
  }

  // async: a broken file rejects the promise instead of throwing at the caller.
  async reload(): Promise<Registry> {
    if (this.#threadBroken) return this.#watcher.reload();
    this.#thread ??= new RegistryParseThread();
    try {
      const { stamp, registry } = await this.#thread.parse(this.path);
      this.#watcher.adopt(stamp, registry);
      return registry;
    } catch (e) {
      if (!(e instanceof RegistryThreadError)) throw e;
      this.#threadBroken = true;
      this.#thread = null;
      return this.#watcher.reload();
    }
  }

  async update(change: (reg: Registry) => Registry): Promise<Registry> {
    return updateRegistryFile(this.path, change);
  }

  watch(onChange: () => void): () => void {
    let last = '';
    const listener = (cur: Stats): void => {
      const stamp = stampOf(cur);
      if (stamp !== last) {
        last = stamp;
        onChange();
      }
    };
    watchFile(this.path, { interval: this.pollMs, persistent: false }, listener);
    // watchFile takes its baseline asynchronously: a write landing before that is never reported. One
    // look after the first interval catches it, against what this store had parsed when the watch began
    // (or the file as it was then).
    const baseline = this.#watcher.loadedStamp || this.#watcher.fileStamp();
    const catchUp = setTimeout(() => {
      if (last === '' && this.#watcher.fileStamp() !== baseline) onChange();
    }, this.pollMs);
    catchUp.unref();
    return () => {
      clearTimeout(catchUp);
      unwatchFile(this.path, listener);
    };
  }

  status(): RegistryStatus {
    return { backend: 'file', connected: true, revision: 0 };
  }

  async close(): Promise<void> {
    await this.#thread?.close();
    this.#thread = null;
  }
}
