// SPDX-License-Identifier: UNLICENSED
// Socket options node does not expose, set through the native addon's setsockopt: the tunnel bounds
// the bytes the kernel holds for it, because every byte queued under a saturating flow is delay for
// all the others (TCP-over-TCP, see docs/performance.md). Best effort: without the addon, or on a
// socket without an fd, nothing is set and the caller is told why; the data path works either way.
import { loadTapAddon, type TapAddon } from './addon.js';

// Linux values, identical on x86-64 and arm64.
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const IPPROTO_TCP = 6;
const TCP_NOTSENT_LOWAT = 25;
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IPPROTO_IPV6 = 41;
const IPV6_MTU_DISCOVER = 23;
/** DF on every packet, no local fragmentation, and no trust in ICMP's path MTU (a forged ICMP cannot shrink sends). */
const IP_PMTUDISC_PROBE = 3;

export interface SocketTuning {
  /** TCP_NOTSENT_LOWAT: unsent bytes the kernel accepts beyond what is in flight. */
  notsentLowat?: number;
  /** SO_SNDBUF / SO_RCVBUF in bytes (the kernel doubles them and stops autotuning). */
  sndbuf?: number;
  rcvbuf?: number;
  /** UDP_SEGMENT (UDP GSO): a send longer than this is cut into datagrams of this size by the kernel. */
  udpSegment?: number;
  /** IP(V6)_MTU_DISCOVER = PMTUDISC_PROBE on a UDP socket of that family: the datagram channel's own path MTU search. */
  pmtuProbe?: 'ipv4' | 'ipv6';
}

export type TuneResult = { ok: true; applied: Record<string, number> } | { ok: false; reason: string };

/**
 * net/tls sockets and servers keep their libuv handle (which knows its fd) in `_handle`; a dgram socket
 * keeps it in its internal state object, under a symbol.
 */
function fdOf(s: object): number | undefined {
  // The symbol first: dgram's own `_handle` getter is deprecated and warns.
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  const h = sym
    ? (s as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym]?.handle
    : (s as { _handle?: { fd?: unknown } | null })._handle;
  return typeof h?.fd === 'number' && h.fd >= 0 ? h.fd : undefined;
}

let cached: TapAddon | null | undefined;
function defaultAddon(): TapAddon | null {
  if (cached === undefined) {
    try {
      cached = loadTapAddon();
    } catch {
      cached = null;
    }
  }
  return cached;
}

/** Applies `t` to the socket (or listening server) `s`; never throws. */
export function tuneSocket(s: object, t: SocketTuning, addon: TapAddon | null = defaultAddon()): TuneResult {
  if (!addon?.setsockopt) return { ok: false, reason: 'native addon with setsockopt not available' };
  const fd = fdOf(s);
  if (fd === undefined) return { ok: false, reason: 'socket has no file descriptor' };
  const applied: Record<string, number> = {};
  try {
    if (t.sndbuf !== undefined) applied.sndbuf = addon.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, t.sndbuf);
    if (t.rcvbuf !== undefined) applied.rcvbuf = addon.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, t.rcvbuf);
    if (t.notsentLowat !== undefined) applied.notsentLowat = addon.setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, t.notsentLowat);
    if (t.udpSegment !== undefined) applied.udpSegment = addon.setsockopt(fd, SOL_UDP, UDP_SEGMENT, t.udpSegment);
    if (t.pmtuProbe === 'ipv4') applied.pmtuProbe = addon.setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    if (t.pmtuProbe === 'ipv6') applied.pmtuProbe = addon.setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IP_PMTUDISC_PROBE);
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  return { ok: true, applied };
}

/**
 * A function returning the bytes waiting unread in `s`'s kernel receive queue, or undefined when that
 * cannot be known (no addon, no fd). Resolve once per socket; each call is one ioctl.
 */
export function unreadBytesProbe(s: object, addon: TapAddon | null = defaultAddon()): (() => number) | undefined {
  const fd = fdOf(s);
  const a = addon;
  if (fd === undefined || !a?.unreadBytes) return undefined;
  return () => {
    try {
      return a.unreadBytes?.(fd) ?? 0;
    } catch {
      return 0; // closed under us: nothing is waiting
    }
  };
}
