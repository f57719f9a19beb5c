// SPDX-License-Identifier: UNLICENSED
// The project's native addon (native/tap/tap.c): TAP frame I/O for the agent, socket options node does
// not expose and the datagram channel's AEAD (aead.c) for both the agent and the headend. This file
// finds and loads it; what each call means is with its users (agent/adapters/tap.ts,
// shared/native/socket-options.ts, shared/native/datagram-aead.ts).
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, parse as parsePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectorError } from '../errors.js';

/** Environment variable naming the addon file (set by the single-binary image, which extracts it). */
export const TAP_ADDON_ENV = 'CONNECTOR_TAP_ADDON';
const ADDON_RELATIVE = join('build', 'Release', 'tap.node');

/** The native handle; opaque to everyone but this file. */
export interface NativeTap {
  readonly ifname: string;
  readonly fd: number;
  /** Opened with IFF_VNET_HDR: batches are [u32 len][virtio_net_hdr][frame]. Older builds lack it. */
  readonly vnetHdr?: boolean;
}

export interface NativeStats {
  truncated: number;
  writeErrors: number;
  lastWriteError: string;
  /** Frames the write thread could not write (older builds lack it, and the thread). */
  threadDropped?: number;
  writeThread?: boolean;
}

/** The addon's UDP socket's counters. */
export interface NativeUdpStats {
  /** Datagrams the kernel did not take: a full socket buffer, or an error (below). */
  dropped: number;
  sendErrors: number;
  recvErrors: number;
  lastError: string;
  gro: boolean;
  gso: boolean;
  truncated: number;
  /** A thread of its own makes the send system calls, and the bytes queued for it (older builds leave both out). */
  sendThread?: boolean;
  queuedBytes?: number;
}

/** The addon's UDP socket. */
export interface UdpHandle {
  readonly fd: number;
  /** The bound port. */
  readonly port: number;
  readonly gro: boolean;
}

/** An AEAD context in C; opaque. */
export type AeadHandle = { readonly __aead: unique symbol };

/** The addon's exports, as the C code defines them. */
export interface TapAddon {
  open(name: string, vnetHdr?: boolean): NativeTap;
  /** `readRoom` (1519-65536): the largest frame read; a TAP of known MTU needs less buffer (a vnetHdr one then gets no super-frame room). */
  start(tap: NativeTap, maxBatch: number, onBatch: (count: number, used: number, err?: Error) => void, readRoom?: number): Buffer;
  write(tap: NativeTap, frames: readonly Uint8Array[]): number;
  close(tap: NativeTap): void;
  /** open(name) with the kernel's part on a libuv worker thread (TUNSETIFF waits for the RTNL lock). Older builds lack it. */
  openAsync?(name: string, cb: (err: Error | undefined, tap: NativeTap | undefined) => void, vnetHdr?: boolean): void;
  stats(tap: NativeTap): NativeStats;
  /** A super-frame with its virtio_net_hdr (vnetHdr TAPs); false when the kernel did not take it. Older builds lack it. */
  writeOffload?(tap: NativeTap, vnetHdr: Buffer, frame: Buffer): boolean;
  /** From now on a thread of the TAP's own makes the write system calls, in the order write/writeOffload queued them. */
  writeThread?(tap: NativeTap): void;
  /** TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN (true) or 0 (false) on a vnetHdr TAP. Older builds lack it. */
  setOffload?(tap: NativeTap, on: boolean): void;
  /** setsockopt(2) with an int value on a socket fd; returns what getsockopt reads back. Older builds lack it. */
  setsockopt?(fd: number, level: number, name: number, value: number): number;
  /** Bytes waiting in a socket's receive queue (FIONREAD). Older builds lack it. */
  unreadBytes?(fd: number): number;
  /** Stops (true) or restarts (false) reading a started TAP; the kernel's queue holds what comes meanwhile. Older builds lack it. */
  pause?(tap: NativeTap, paused: boolean): void;
  /** Names the calling thread (15 bytes at most; longer is cut). Older builds lack it. */
  threadName?(name: string): void;
  /** The ones'-complement sum of bytes[from, to) plus `initial`, folded, not complemented (older builds lack it). */
  inetSum?(bytes: Uint8Array, from: number, to: number, initial: number): number;
  /** Whether an interface of this namespace does GRO (ETHTOOL_GGRO); throws ENODEV and the like. Older builds lack it. */
  netdevGro?(ifname: string): boolean;
  /** The datagram AEAD's context for one epoch key (alg 0 AES-256-GCM, 1 ChaCha20-Poly1305); throws when the node has no OpenSSL to lend. Older builds lack it. */
  aeadNew?(alg: number, key: Buffer, iv: Buffer): AeadHandle;
  aeadFree?(h: AeadHandle): void;
  /** Seals one or two parts into `out` after its header (see shared/tunnel/datagram/aead.ts). */
  aeadSeal?(h: AeadHandle, out: Buffer, epoch: number, counter: number, part0: Uint8Array, part1?: Uint8Array): boolean;
  /** Opens a datagram into `out` (its length - 28); false when it is not authentic. */
  aeadOpen?(h: AeadHandle, d: Buffer, epoch: number, counter: number, out: Buffer): boolean;
  /** Cuts a TCP super-frame into segments and seals each as a datagram into `out`, back to back; returns how many (shared/tunnel/datagram/aead.ts). */
  aeadSealSegments?(
    h: AeadHandle,
    out: Buffer,
    head: Buffer,
    counter: number,
    kind: number,
    frame: Uint8Array,
    l3: number,
    l4: number,
    headers: number,
    ipEnd: number,
    ipv6: boolean,
    mss: number,
  ): number;
  /** A non-blocking UDP socket bound to ip:port, DF with pmtuProbe, UDP_GRO when the kernel has it. Older builds lack the udp* calls. */
  udpOpen?(ip: string, port: number, rcvbuf: number, sndbuf: number, pmtuProbe: boolean): UdpHandle;
  udpConnect?(h: UdpHandle, ip: string, port: number): void;
  /** Reads batches: [u16 LE length][u16 BE port][16 address bytes][datagram] x count, in the returned (reused) Buffer. */
  udpStart?(h: UdpHandle, maxBatch: number, onBatch: (count: number, used: number, err?: Error) => void): Buffer;
  /** Sends up to 1,024 datagrams (equal-sized runs by UDP GSO); returns how many the kernel took. */
  udpSend?(h: UdpHandle, datagrams: readonly Buffer[], ip?: string, port?: number): number;
  /** From now on a thread of the socket's own makes its send system calls, in the order udpSend queued them. */
  udpSendThread?(h: UdpHandle): void;
  udpStats?(h: UdpHandle): NativeUdpStats;
  udpClose?(h: UdpHandle): void;
  /** glibc's malloc_trim(0) on a worker thread; calls back with whether memory went back and how long it took. */
  mallocTrim?(cb: (released: boolean, ms: number) => void): void;
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

