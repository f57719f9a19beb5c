// SPDX-License-Identifier: UNLICENSED
// Where a service finds the registry, and the one interface every storage backend offers. The config
// names the backend (`registry: { file: PATH }` or `registry: { postgres: URL }`); the old form, a bare
// path string, still means the JSON file. Services depend on RegistryStore only, so a backend is an
// adapter chosen at wiring time.
import { isAbsolute, resolve } from 'node:path';
import { ConnectorError } from '../errors.js';
import { issue, type Schema } from '../schema/schema.js';
import type { Registry } from './registry.js';

export type RegistrySource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };

/** For logs and metrics: is the backend reachable, and which revision is served (the file backend has none: 0). */
export interface RegistryStatus {
  readonly backend: 'file' | 'postgres';
  readonly connected: boolean;
  readonly revision: number;
}

/** What a service needs from the registry, whatever holds it. */
export interface RegistryStore {
  /** The last registry read; never blocks on I/O, so the admission path can call it per handshake. */
  current(): Registry;
  /** Re-reads now (SIGHUP); keeps the last good registry and rejects when the backend's copy is broken. */
  reload(): Promise<Registry>;
  /** Read-modify-write, safe against concurrent writers (file lock, or a database transaction). */
  update(change: (reg: Registry) => Registry): Promise<Registry>;
  /** Calls `onChange` after another writer changed the registry; returns a stop function. */
  watch(onChange: () => void): () => void;
  status(): RegistryStatus;
  close(): Promise<void>;
}

function fail(problem: string): never {
  throw new ConnectorError('CK_ERR_CONFIG_INVALID', `registry: ${problem}`);
}

/** Parses the config's `registry` value: a path string, `{ file: PATH }` or `{ postgres: URL }`. */
export function parseRegistrySource(value: unknown): RegistrySource {
  if (typeof value === 'string') {
    if (value === '') fail('expected a file path, { file: PATH } or { postgres: URL }');
    return /^postgres(ql)?:\/\//.test(value) ? postgresSource(value) : { kind: 'file', path: value };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('expected a file path, { file: PATH } or { postgres: URL }');
  const keys = Object.keys(value);
  if (keys.length !== 1) fail(`expected exactly one of "file" or "postgres", got ${keys.length ? keys.join(', ') : 'none'}`);
  const [key] = keys as [string];
  const v = (value as Record<string, unknown>)[key];
  if (typeof v !== 'string' || v === '') fail(`"${key}" must be a non-empty string`);
  if (key === 'file') return { kind: 'file', path: v };
  if (key === 'postgres') return postgresSource(v);
  return fail(`unknown backend "${key}" (file or postgres)`);
}

// libpq URIs allow what WHATWG URL refuses (an empty host with a user: the unix socket), so only the
// scheme is checked here; the driver reports the rest when it connects.
function postgresSource(url: string): RegistrySource {
  if (!/^postgres(ql)?:\/\/\S*$/.test(url)) fail(`"${url}" is not a postgres:// URL`);
  return { kind: 'postgres', url };
}

/** For logs: the backend and where, without a password. */
export function describeRegistrySource(s: RegistrySource): string {
  if (s.kind === 'file') return `file ${s.path}`;
  return `postgres ${s.url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1:***@')}`;
}

/** A config field naming the registry (a path, { file } or { postgres }); errors name the field's path. */
export function registrySourceField(): Schema<RegistrySource> {
  return (v, path) => {
    if (v === undefined) return issue(path, 'is required');
    try {
      return parseRegistrySource(v);
    } catch (e) {
      return issue(path, (e as Error).message.replace(/^registry: /, ''));
    }
  };
}

/** A relative file path is relative to the config file's directory, like every other path in a config. */
export function resolveRegistrySource(s: RegistrySource, baseDir: string): RegistrySource {
  return s.kind === 'file' && !isAbsolute(s.path) ? { kind: 'file', path: resolve(baseDir, s.path) } : s;
}
