// SPDX-License-Identifier: UNLICENSED
// FrameDevice over a Linux TAP, through the native addon (native/tap/tap.c). The addon drains up to
// maxBatch frames per wake-up into one reused buffer; this file only slices that buffer into frames,
// keeps counters and turns native errors into TapError. No policy here: link state, MTU and bridge
// membership belong to `ip` in the callers.
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectorError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { FrameDevice } from '../core/ports.js';

/** The batch size the agent uses; the addon accepts 1..TAP_MAX_BATCH. */
export const TAP_DEFAULT_BATCH = 64;
export const TAP_MAX_BATCH = 1024;
/** Environment variable naming the addon file (set by the single-binary image, which extracts it). */
export const TAP_ADDON_ENV = 'CONNECTOR_TAP_ADDON';
const ADDON_RELATIVE = join('build', 'Release', 'tap.node');

/** The native handle; opaque to everyone but this file. */
interface NativeTap {
  readonly ifname: string;
  readonly fd: number;
}

interface NativeStats {
  truncated: number;
  writeErrors: number;
  lastWriteError: string;
}

/** The addon's exports, as the C code defines them. */
export interface TapAddon {
  open(name: string): NativeTap;
  start(tap: NativeTap, maxBatch: number, onBatch: (count: number, used: number, err?: Error) => void): Buffer;
  write(tap: NativeTap, frames: readonly Uint8Array[]): number;
  close(tap: NativeTap): void;
  stats(tap: NativeTap): NativeStats;
  /** setsockopt(2) with an int value on a socket fd; returns what getsockopt reads back. Older builds lack it. */
  setsockopt?(fd: number, level: number, name: number, value: number): number;
  /** Bytes waiting in a socket's receive queue (FIONREAD). Older builds lack it. */
  unreadBytes?(fd: number): number;
}

/** A failed system call on the TAP: which device, which call, and the errno code (EPERM, ENOENT, ...). */
export class TapError extends ConnectorError {
  override name = 'TapError';
  constructor(
    readonly device: string,
    /** errno name as Node spells it: 'EPERM', 'EBUSY', 'EBADFD'. */
    readonly errnoCode: string,
    readonly syscall: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super('CK_ERR_TAP', message, options);
  }
}

interface NativeError extends Error {
  code: string;
  syscall: string;
}

function isNativeError(e: unknown): e is NativeError {
  return (
    e instanceof Error &&
    typeof (e as Partial<NativeError>).code === 'string' &&
    typeof (e as Partial<NativeError>).syscall === 'string'
  );
}

function toTapError(e: unknown, device: string): Error {
  if (isNativeError(e)) return new TapError(device, e.code, e.syscall, e.message, { cause: e });
  return e instanceof Error ? e : new Error(String(e));
}

function isTapAddon(m: unknown): m is TapAddon {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  return ['open', 'start', 'write', 'close', 'stats'].every((k) => typeof o[k] === 'function');
}

export interface LoadTapAddonOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory to search upwards from for build/Release/tap.node; defaults to this module's directory. */
  searchFrom?: string;
}

/** Where the addon would be loaded from, or undefined when neither the env nor a build directory has it. */
export function findTapAddon(options: LoadTapAddonOptions = {}): string | undefined {
  const fromEnv = (options.env ?? process.env)[TAP_ADDON_ENV];
  if (fromEnv) return fromEnv;
  // Works from src/ (tsx), dist/src/ (tsc) and any install prefix: walk up to the package's build/.
  let dir = options.searchFrom ?? dirname(fileURLToPath(import.meta.url));
  const root = parsePath(dir).root;
  for (;;) {
    const candidate = join(dir, ADDON_RELATIVE);
    if (existsSync(candidate)) return candidate;
    if (dir === root) return undefined;
    dir = dirname(dir);
  }
}

const loaded = new Map<string, TapAddon>();

/** Loads the addon from $CONNECTOR_TAP_ADDON or the nearest build/Release/tap.node. */
export function loadTapAddon(options: LoadTapAddonOptions = {}): TapAddon {
  const path = findTapAddon(options);
  if (path === undefined) {
    throw new ConnectorError(
      'CK_ERR_TAP',
      `TAP addon not found: set ${TAP_ADDON_ENV} to the tap.node file, or build it with ` +
        '`node-gyp rebuild --nodedir=/usr` in the package directory (npm install does this)',
    );
  }
  const cached = loaded.get(path);
  if (cached) return cached;
  const mod: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(mod, path, osConstants.dlopen.RTLD_NOW);
  } catch (e) {
    throw new ConnectorError(
      'CK_ERR_TAP',
      `cannot load the TAP addon ${path}: ${e instanceof Error ? e.message : String(e)} ` +
        '(wrong architecture or C library? rebuild it for this host)',
      { cause: e },
    );
  }
  if (!isTapAddon(mod.exports)) {
    throw new ConnectorError('CK_ERR_TAP', `${path} is not the TAP addon (missing open/start/write/close/stats)`);
  }
  loaded.set(path, mod.exports);
  return mod.exports;
}

export interface TapStats {
  /** Frames handed to the handler, and the JS calls that carried them. */
  rxFrames: number;
  rxBatches: number;
  /** Frames longer than 65535 bytes, cut by the kernel and dropped. */
  rxTruncated: number;
  rxErrors: number;
  txFrames: number;
  /** Frames passed to writeFrames that the kernel did not take (EAGAIN, rejected, or device closed). */
  txDrops: number;
  /** Of those, frames the kernel rejected (too short, too long); lastTxError names the last errno. */
  txErrors: number;
  lastTxError: string;
}

/** The agent's FrameDevice port, plus what only a TAP has (its name, read errors, counters). */
export interface TapDevice extends FrameDevice {
  /** The interface name the kernel gave (the requested one, or tapN for an empty request). */
  readonly name: string;
  readonly maxBatch: number;
  /** Starts reading on the first call; frames wait in the kernel queue until then. The buffers are
   * views of one batch buffer and are reused once the handler returns: copy what you keep. */
  onFrames(handler: (frames: readonly Buffer[]) => void): void;
  /** Writes the frames in order; returns how many the kernel accepted, the caller counts the rest. */
  writeFrames(frames: readonly Buffer[]): number;
  /** Called once when reading fails for good (the link was deleted: EBADFD); reading has stopped. */
  onError(handler: (err: TapError) => void): void;
  readonly stats: Readonly<TapStats>;
  /** Stops reading and closes the fd; a non-persistent TAP disappears. Safe to call more than once. */
  close(): Promise<void>;
}

export interface OpenTapOptions {
  /** Interface name, at most 15 bytes; an existing persistent TAP of that name is attached. */
  name: string;
  maxBatch?: number;
  log: Logger;
  /** Defaults to loadTapAddon(). */
  addon?: TapAddon;
}

/** Opens (creates or attaches) the TAP. Throws TapError with the errno of the failing call. */
export function openTap(options: OpenTapOptions): TapDevice {
  const maxBatch = options.maxBatch ?? TAP_DEFAULT_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > TAP_MAX_BATCH) {
    throw new ConnectorError('CK_ERR_TAP', `maxBatch must be an integer from 1 to ${TAP_MAX_BATCH}, got ${maxBatch}`);
  }
  const addon = options.addon ?? loadTapAddon();
  let native: NativeTap;
  try {
    native = addon.open(options.name);
  } catch (e) {
    throw toTapError(e, options.name);
  }
  const name = native.ifname;
  const log = options.log.child({ tap: name });
  const stats: TapStats = {
    rxFrames: 0,
    rxBatches: 0,
    rxTruncated: 0,
    rxErrors: 0,
    txFrames: 0,
    txDrops: 0,
    txErrors: 0,
    lastTxError: '',
  };
  let handler: ((frames: readonly Buffer[]) => void) | undefined;
  let errorHandler: ((err: TapError) => void) | undefined;
  let batch: Buffer | undefined;
  let closed = false;

  // Counters only the C side sees; read on demand so the write path allocates nothing.
  const syncNative = (): void => {
    if (closed) return;
    const s = addon.stats(native);
    stats.rxTruncated = s.truncated;
    stats.txErrors = s.writeErrors;
    stats.lastTxError = s.lastWriteError;
  };

  const onBatch = (count: number, used: number, err?: Error): void => {
    if (count > 0 && batch && handler) {
      const frames = new Array<Buffer>(count);
      let off = 0;
      for (let i = 0; i < count && off + 2 <= used; i++) {
        const len = batch.readUInt16LE(off);
        frames[i] = batch.subarray(off + 2, off + 2 + len);
        off += 2 + len;
      }
      stats.rxFrames += count;
      stats.rxBatches++;
      handler(frames);
    }
    if (err) {
      stats.rxErrors++;
      const tapErr = toTapError(err, name);
      log.error('tap read failed; reading stopped', { error: tapErr.message });
      if (errorHandler && tapErr instanceof TapError) errorHandler(tapErr);
    }
  };

  log.info('tap open', { maxBatch, fd: native.fd });
  return {
    name,
    maxBatch,
    onFrames(h) {
      handler = h;
      if (batch || closed) return;
      try {
        batch = addon.start(native, maxBatch, onBatch);
      } catch (e) {
        throw toTapError(e, name);
      }
    },
    onError(h) {
      errorHandler = h;
    },
    writeFrames(frames) {
      if (closed || frames.length === 0) {
        stats.txDrops += frames.length;
        return 0;
      }
      const n = addon.write(native, frames);
      stats.txFrames += n;
      stats.txDrops += frames.length - n;
      return n;
    },
    get stats() {
      syncNative();
      return { ...stats };
    },
    close() {
      if (!closed) {
        syncNative();
        closed = true;
        addon.close(native);
        batch = undefined;
        log.info('tap closed', { rxFrames: stats.rxFrames, txFrames: stats.txFrames, txDrops: stats.txDrops });
      }
      // Let libuv finish closing the poll handle before callers check for leaked handles.
      return new Promise((resolve) => setImmediate(resolve));
    },
  };
}
