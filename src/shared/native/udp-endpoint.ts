// SPDX-License-Identifier: UNLICENSED
// The datagram channel's UDP socket, for the agent (connected to its headend) and the headend (one socket,
// every peer): the addon's batched socket (native/tap/udp.c: one JS call per batch of datagrams read,
// UDP GRO in, several datagrams per system call and UDP GSO out) when this build has it, else node's
// dgram, one datagram per call, as before. Either way sends queued in one task leave together at its end,
// so a batch of frames from the LAN becomes a few system calls.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ConnectorError } from '../errors.js';
import { loadTapAddon, type NativeUdpStats, type TapAddon, type UdpHandle } from './addon.js';
import { tuneSocket } from './socket-options.js';

export interface UdpEndpointOptions {
  /** Local IP literal to bind ('0.0.0.0', '::', '127.0.0.1'); port 0 lets the kernel pick. */
  host: string;
  port: number;
  /** What the socket is for, in a bind error ("datagram (datagram.port)"). */
  what: string;
  rcvbuf: number;
  sndbuf: number;
  /** DF on every packet and no trust in ICMP's path MTU: the channel searches the path MTU itself. */
  pmtuProbe: boolean;
  /** The only peer (IP literal): its datagrams only, and send() needs no address. */
  connect?: { host: string; port: number };
  /**
   * Sends leave the event loop: a thread of the socket's own makes the system calls (the kernel's UDP/IP
   * work, the GSO cut and the checksums run on its core), in order. Only with the addon's socket.
   */
  sendThread?: boolean;
  /**
   * Each datagram as it arrives; the address is '' when connected. `d` may be written (opened in place)
   * and stays valid to the end of its batch (onBatchEnd and the microtasks after it); the addon's next read
   * batch reuses its memory, so what must outlive the batch is copied.
   */
  onDatagram(d: Buffer, address: string, port: number): void;
  /** After the datagrams of one read batch. */
  onBatchEnd?(): void;
  onError(e: Error): void;
}

/** The socket's counters (NativeUdpStats); node's dgram reports zeros and no send thread. */
export type UdpEndpointStats = Omit<NativeUdpStats, 'truncated' | 'sendThread' | 'queuedBytes'> & {
  sendThread: boolean;
  queuedBytes: number;
};

export interface UdpEndpoint {
  readonly port: number;
  /** 'native' or 'dgram'. */
  readonly kind: string;
  /** Queues `d` for `address`:`port` (the connected peer when omitted); it leaves at the end of this task. */
  send(d: Buffer, address?: string, port?: number): void;
  /**
   * Memory for one datagram to send: the native socket's arena, valid until the sends queued in this
   * task have left (so fill it and send() it now, and keep no reference); a new Buffer with dgram.
   */
  alloc(size: number): Buffer;
  stats(): UdpEndpointStats;
  close(): Promise<void>;
}

const MAX_PER_CALL = 1024;
/** Send memory per task: a TAP batch of 256 full frames sealed, with room to spare. */
const ARENA_BYTES = 1024 * 1024;
const READ_BATCH = 256;

function bindError(o: UdpEndpointOptions, e: unknown): ConnectorError {
  const msg = e instanceof Error ? e.message : String(e);
  return new ConnectorError('CK_ERR_IO', `cannot bind the ${o.what} socket to ${o.host}:${o.port}: ${msg}`, { cause: e });
}

/** inet_ntop for the 16 address bytes of a batch record (IPv4 in the first 4 on an IPv4 socket). */
export function formatAddress(b: Buffer, at: number, v6: boolean): string {
  if (!v6) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(at + 2 * i));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff)
    return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  // The longest run of two or more zero words becomes '::' (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  return best < 0 ? hex(words) : `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

function openNative(o: UdpEndpointOptions, addon: NativeUdp): UdpEndpoint {
  let h: UdpHandle;
  try {
    h = addon.udpOpen(o.host, o.port, o.rcvbuf, o.sndbuf, o.pmtuProbe);
  } catch (e) {
    throw bindError(o, e);
  }
  const v6 = isIPv6(o.host);
  const connected = o.connect !== undefined;
  try {
    if (o.connect) addon.udpConnect(h, o.connect.host, o.connect.port);
    if (o.sendThread === true) addon.udpSendThread?.(h);
  } catch (e) {
    addon.udpClose(h);
    throw e;
  }
  let closed = false;
  // The last source seen: a batch mostly comes from few peers, so most records reuse its string.
  // Compared as four 32-bit words: Buffer.compare per record was a call into C with its offsets checked.
  let lastAddress = '';
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  const batch = addon.udpStart(h, READ_BATCH, (count, _used, err) => {
    if (err) o.onError(err);
    let off = 0;
    for (let i = 0; i < count && !closed; i++) {
      const len = batch.readUInt16LE(off);
      let address = '';
      let port = 0;
      if (!connected) {
        port = batch.readUInt16BE(off + 2);
        const a0 = batch.readUInt32LE(off + 4);
        const a1 = batch.readUInt32LE(off + 8);
        const a2 = batch.readUInt32LE(off + 12);
        const a3 = batch.readUInt32LE(off + 16);
        if (lastAddress === '' || a0 !== w0 || a1 !== w1 || a2 !== w2 || a3 !== w3) {
          lastAddress = formatAddress(batch, off + 4, v6);
          w0 = a0;
          w1 = a1;
          w2 = a2;
          w3 = a3;
        }
        address = lastAddress;
      }
      o.onDatagram(batch.subarray(off + 20, off + 20 + len), address, port);
      off += 20 + len;
    }
    if (!closed) o.onBatchEnd?.();
  });
  // Queued sends by destination, in the order they were first used.
  type Group = { address: string | undefined; port: number | undefined; list: Buffer[] };
  const queue = new Map<string, Group>();
  let last: Group | null = null;
  let scheduled = false;
  // The send arena: datagrams of one task are carved from it and copied by the kernel at the flush, so
  // a datagram costs no allocation of its own (each new ArrayBuffer is work for the collector).
  const arena = Buffer.allocUnsafeSlow(ARENA_BYTES);
  let arenaUsed = 0;
  let refused = 0;
  let refusedSaidAt = Number.NEGATIVE_INFINITY;
  const flush = (): void => {
    scheduled = false;
    arenaUsed = 0;
    if (closed) {
      last = null;
      return queue.clear();
    }
    for (const q of queue.values())
      for (let i = 0; i < q.list.length; i += MAX_PER_CALL) {
        const part = q.list.length <= MAX_PER_CALL ? q.list : q.list.slice(i, i + MAX_PER_CALL);
        try {
          if (q.address === undefined) addon.udpSend(h, part);
          else addon.udpSend(h, part, q.address, q.port);
        } catch (e) {
          // A destination this socket cannot reach (another address family): those datagrams are
          // dropped and counted, as dgram reports an error; a flush never throws into the loop.
          refused += part.length;
          // Said once per 10 s, not once per task: a misconfigured peer must not flood the log.
          if (Date.now() - refusedSaidAt >= 10_000) {
            refusedSaidAt = Date.now();
            o.onError(e instanceof Error ? e : new Error(String(e)));
          }
        }
      }
    queue.clear();
    last = null;
  };
  return {
    port: h.port,
    kind: 'native',
    send(d, address, port) {
      if (closed) return;
      // Most sends of a task go where the previous one went: no key string for those.
      let q = last;
      if (q === null || q.address !== address || q.port !== port) {
        const key = address === undefined ? '' : `${address}|${port ?? 0}`;
        q = queue.get(key) ?? null;
        if (q === null) queue.set(key, (q = { address, port, list: [] }));
        last = q;
      }
      q.list.push(d);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    alloc(size) {
      // Round up to 8 bytes: the AEAD and the kernel like aligned buffers.
      const at = arenaUsed;
      if (at + size > ARENA_BYTES) return Buffer.allocUnsafe(size);
      arenaUsed = at + ((size + 7) & ~7);
      return arena.subarray(at, at + size);
    },
    stats: () => {
      const st = addon.udpStats(h);
      return { ...st, dropped: st.dropped + refused, sendThread: st.sendThread === true, queuedBytes: st.queuedBytes ?? 0 };
    },
    close() {
      if (!closed) {
        closed = true;
        addon.udpClose(h);
      }
      return Promise.resolve();
    },
  };
}

async function openDgram(o: UdpEndpointOptions): Promise<UdpEndpoint> {
  const sock: Socket = createSocket({ type: isIPv6(o.host) ? 'udp6' : 'udp4', reuseAddr: false });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(bindError(o, e));
    sock.once('error', onError);
    // exclusive: a headend worker binds its own socket (cluster would share one among all workers).
    sock.bind({ port: o.port, address: o.host, exclusive: true }, () => {
      sock.removeListener('error', onError);
      resolve();
    });
  });
  sock.on('error', (e) => o.onError(e));
  const tuned = tuneSocket(sock, { rcvbuf: o.rcvbuf, sndbuf: o.sndbuf, ...(o.pmtuProbe ? { pmtuProbe: isIPv6(o.host) ? 'ipv6' : 'ipv4' } : {}) });
  let connected = o.connect === undefined;
  if (o.connect) {
    const c = o.connect;
    await new Promise<void>((resolve) => sock.connect(c.port, c.host, () => resolve()));
    connected = true;
  }
  sock.on('message', (msg, from) => {
    o.onDatagram(msg, o.connect ? '' : from.address, o.connect ? 0 : from.port);
    o.onBatchEnd?.();
  });
  let closed = false;
  return {
    port: sock.address().port,
    kind: 'dgram',
    send(d, address, port) {
      if (closed || !connected) return;
      if (address === undefined) sock.send(d);
      else sock.send(d, port, address);
    },
    alloc: (size) => Buffer.allocUnsafe(size),
    stats: () => ({
      dropped: 0,
      sendErrors: 0,
      recvErrors: 0,
      lastError: tuned.ok ? '' : tuned.reason,
      gro: false,
      gso: false,
      sendThread: false,
      queuedBytes: 0,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        sock.close(() => resolve());
      }),
  };
}

type NativeUdp = Required<Pick<TapAddon, 'udpOpen' | 'udpConnect' | 'udpStart' | 'udpSend' | 'udpStats' | 'udpClose'>> &
  Pick<TapAddon, 'udpSendThread'>;

/** The addon's socket calls, bound, when this build has them and they are not turned off; else null. */
export function nativeUdp(env: NodeJS.ProcessEnv = process.env, load: () => TapAddon = loadTapAddon): NativeUdp | null {
  if (env.CONNECTOR_DATAGRAM_SOCKET === 'dgram') return null;
  let addon: TapAddon;
  try {
    addon = load();
  } catch {
    return null;
  }
  const { udpOpen, udpConnect, udpStart, udpSend, udpStats, udpClose } = addon;
  if (!udpOpen || !udpConnect || !udpStart || !udpSend || !udpStats || !udpClose) return null;
  return {
    udpOpen: udpOpen.bind(addon),
    udpConnect: udpConnect.bind(addon),
    udpStart: udpStart.bind(addon),
    udpSend: udpSend.bind(addon),
    udpStats: udpStats.bind(addon),
    udpClose: udpClose.bind(addon),
    ...(addon.udpSendThread ? { udpSendThread: addon.udpSendThread.bind(addon) } : {}),
  };
}

/**
 * Opens the channel's socket: the addon's when it has one (and `CONNECTOR_DATAGRAM_SOCKET` is not
 * 'dgram'), else node's. A bind failure is a CK_ERR_IO naming the address and what the socket is for.
 */
export async function openUdpEndpoint(
  o: UdpEndpointOptions,
  env: NodeJS.ProcessEnv = process.env,
  load: () => TapAddon = loadTapAddon,
): Promise<UdpEndpoint> {
  const native = nativeUdp(env, load);
  return native ? openNative(o, native) : openDgram(o);
}
