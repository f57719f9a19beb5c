// SPDX-License-Identifier: UNLICENSED
// FrameDevice over a Linux TAP, through the native addon (native/tap/tap.c). The addon drains up to
// maxBatch frames per wake-up into one reused buffer; this file only slices that buffer into frames,
// keeps counters and turns native errors into TapError. No policy here: link state, MTU and bridge
// membership belong to `ip` in the callers.
import { ConnectorError } from '../../shared/errors.js';
import { loadTapAddon, type NativeTap, type TapAddon } from '../../shared/native/addon.js';
import type { Logger } from '../../shared/log.js';
import type { FrameDevice } from '../core/ports.js';
import { checkedInetSum } from '../../shared/native/inet-sum.js';

/** The batch size the agent uses; the addon accepts 1..TAP_MAX_BATCH. */
export const TAP_DEFAULT_BATCH = 64;
export const TAP_MAX_BATCH = 1024;
const VNET_HDR = 10;
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
    e instanceof Error && typeof (e as Partial<NativeError>).code === 'string' && typeof (e as Partial<NativeError>).syscall === 'string'
  );
}

function toTapError(e: unknown, device: string): Error {
  if (isNativeError(e)) return new TapError(device, e.code, e.syscall, e.message, { cause: e });
  return e instanceof Error ? e : new ConnectorError('CK_ERR_TAP', `${device}: ${String(e)}`);
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
  /** Writes leave the event loop: a thread of the TAP's own makes them (OpenTapOptions.writeThread). */
  writeThread: boolean;
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
  /** Open with IFF_VNET_HDR, so super-frames can be handed over once `offload.set(true)`; default off. */
  vnetHdr?: boolean;
  /**
   * A thread of the TAP's own makes the write system calls, in order: the kernel's work for a frame
   * written (the bridge, and on veth the receiving host's stack) runs on its core, not the loop's.
   */
  writeThread?: boolean;
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
    native = options.vnetHdr ? addon.open(options.name, true) : addon.open(options.name);
  } catch (e) {
    throw toTapError(e, options.name);
  }
  const name = native.ifname;
  const log = options.log.child({ tap: name });
  if (options.writeThread === true && addon.writeThread) {
    try {
      addon.writeThread(native);
    } catch (e) {
      addon.close(native);
      throw toTapError(e, name);
    }
  }
  const stats: TapStats = {
    rxFrames: 0,
    rxBatches: 0,
    rxTruncated: 0,
    rxErrors: 0,
    txFrames: 0,
    txDrops: 0,
    txErrors: 0,
    lastTxError: '',
    writeThread: false,
  };
  let handler: ((frames: readonly Buffer[], vnetHdrs?: readonly Buffer[]) => void) | undefined;
  const vnet = native.vnetHdr === true;
  let errorHandler: ((err: TapError) => void) | undefined;
  let batch: Buffer | undefined;
  let closed = false;

  // Counters only the C side sees; read on demand so the write path allocates nothing.
  const syncNative = (): void => {
    const s = addon.stats(native);
    stats.rxTruncated = s.truncated;
    stats.txErrors = s.writeErrors;
    stats.lastTxError = s.lastWriteError;
    stats.writeThread = s.writeThread === true;
    // A write the thread could not make was counted as written when it was queued.
    const lost = (s.threadDropped ?? 0) - threadDroppedSeen;
    threadDroppedSeen += lost;
    stats.txFrames -= lost;
    stats.txDrops += lost;
  };
  let threadDroppedSeen = 0;

  const onBatch = (count: number, used: number, err?: Error): void => {
    if (count > 0 && batch && handler) {
      const frames = new Array<Buffer>(count);
      let off = 0;
      if (vnet) {
        // [u32 len][virtio_net_hdr (10)][frame]: the header goes beside the frame.
        const hdrs = new Array<Buffer>(count);
        for (let i = 0; i < count && off + 4 <= used; i++) {
          const len = batch.readUInt32LE(off);
          hdrs[i] = batch.subarray(off + 4, off + 4 + VNET_HDR);
          frames[i] = batch.subarray(off + 4 + VNET_HDR, off + 4 + len);
          off += 4 + len;
        }
        stats.rxFrames += count;
        stats.rxBatches++;
        handler(frames, hdrs);
      } else {
        for (let i = 0; i < count && off + 2 <= used; i++) {
          const len = batch.readUInt16LE(off);
          frames[i] = batch.subarray(off + 2, off + 2 + len);
          off += 2 + len;
        }
        stats.rxFrames += count;
        stats.rxBatches++;
        handler(frames);
      }
    }
    if (err) {
      stats.rxErrors++;
      const tapErr = toTapError(err, name);
      log.error('tap read failed; reading stopped', { error: tapErr.message });
      if (errorHandler && tapErr instanceof TapError) errorHandler(tapErr);
    }
  };

  log.info('tap open', { maxBatch, fd: native.fd, vnetHdr: vnet });
  const { writeOffload, setOffload } = addon;
  const sumInC = checkedInetSum(addon.inetSum?.bind(addon), log);
  let offloadOn = false;
  const offload =
    vnet && writeOffload && setOffload
      ? {
          set(on: boolean): void {
            if (closed || on === offloadOn) return;
            setOffload(native, on);
            offloadOn = on;
            log.info('tap offloads', { on });
          },
          write(vnetHdr: Buffer, frame: Buffer): boolean {
            const ok = !closed && writeOffload(native, vnetHdr, frame);
            if (ok) stats.txFrames++;
            else stats.txDrops++;
            return ok;
          },
          ...(sumInC ? { inetSum: sumInC } : {}),
        }
      : undefined;
  return {
    name,
    maxBatch,
    ...(offload ? { offload } : {}),
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
    pause(paused) {
      if (!closed && batch) addon.pause?.(native, paused);
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
      if (!closed) syncNative();
      return { ...stats };
    },
    close() {
      if (!closed) {
        closed = true;
        addon.close(native);
        // After the close: frames the write thread had not written yet are counted now.
        syncNative();
        batch = undefined;
        log.info('tap closed', { rxFrames: stats.rxFrames, txFrames: stats.txFrames, txDrops: stats.txDrops });
      }
      // Let libuv finish closing the poll handle before callers check for leaked handles.
      return new Promise((resolve) => setImmediate(resolve));
    },
  };
}
