// SPDX-License-Identifier: UNLICENSED
// Receive coalescing toward the LAN, in the spirit of the kernel's GRO: within one batch of frames out of
// the tunnel, a run of consecutive TCP segments of one flow (the headend sends a super-frame's segments
// back to back as datagrams) becomes one super-frame, written to the TAP with a virtio_net_hdr (GSO,
// partial checksum). The kernel then carries one packet through the bridge to the LAN host and segments
// it only where a device needs it, instead of one TAP write and one trip through the stack per segment.
//
// A segment joins a run only under the rules the kernel's tcp_gro_receive applies: same Ethernet, IP and
// TCP headers but for lengths, IPv4 id (+1), checksums, sequence (contiguous) and PSH; ACK set and no
// SYN/FIN/RST/URG/CWR; every segment but the last of the run's first size; a valid TCP checksum (a
// corrupt segment passes alone, so the LAN host still drops it); at most 64 segments and 64,000 payload
// bytes. Untagged IPv4 without options and IPv6 without extension headers only; everything else, and
// the order of all frames, passes untouched.
import {
  GSO_TCPV4,
  GSO_TCPV6,
  VNET_F_NEEDS_CSUM,
  VNET_HDR_LEN,
  fold,
  inetSum,
  ipv4Checksum,
  sum16,
  writeVnetHdr,
  type InetSum,
} from './tso-segment.js';

const MAX_RUN_SEGMENTS = 64;
const MAX_RUN_PAYLOAD = 64_000;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const TCP_URG = 0x20;
const TCP_CWR = 0x80;
const NO_MERGE_FLAGS = TCP_FIN | TCP_SYN | TCP_RST | TCP_URG | TCP_CWR;

export interface CoalesceCounters {
  /** Super-frames written, and the segments they carried. */
  superFrames: number;
  segments: number;
  /** TCP segments left alone because their checksum was wrong (the LAN host drops them as it would). */
  badChecksum: number;
}

/** Where coalesced output goes, in input order: runs of plain frames, and super-frames with their header. */
export interface CoalesceSink {
  /** `frames` is reused after the call: consume it (write it) before returning. */
  plain(frames: readonly Buffer[]): void;
  /** `segments`: how many frames of the input it carries. */
  superFrame(vnetHdr: Buffer, frame: Buffer, segments: number): void;
}

interface Seg {
  ipv6: boolean;
  l4: number;
  headers: number;
  payload: number;
  seq: number;
  flags: number;
}

const be16 = (b: Buffer, o: number): number => ((b[o] as number) << 8) | (b[o + 1] as number);
const be32 = (b: Buffer, o: number): number => (be16(b, o) * 0x10000 + be16(b, o + 2)) >>> 0;

/** Whether `f` is a TCP data segment that may be merged, its offsets into `out` (anything else passes as it is). */
function parseSegment(f: Buffer, out: Seg): boolean {
  if (f.length < 54) return false;
  const type = be16(f, 12);
  let l4: number;
  let ipEnd: number;
  if (type === 0x0800) {
    // No options, TCP, not a fragment (DF allowed).
    if (f[14] !== 0x45 || f[23] !== 6 || (be16(f, 20) & 0xbfff) !== 0) return false;
    l4 = 34;
    ipEnd = 14 + be16(f, 16);
    out.ipv6 = false;
  } else if (type === 0x86dd) {
    if ((f[14] as number) >> 4 !== 6 || f[20] !== 6) return false;
    l4 = 54;
    ipEnd = 54 + be16(f, 18);
    out.ipv6 = true;
  } else return false;
  // Padding or a short frame: left alone.
  if (ipEnd !== f.length || f.length < l4 + 20) return false;
  const doff = ((f[l4 + 12] as number) >> 4) * 4;
  const flags = f[l4 + 13] as number;
  if (doff < 20 || l4 + doff >= ipEnd || (flags & TCP_ACK) === 0 || (flags & NO_MERGE_FLAGS) !== 0) return false;
  out.l4 = l4;
  out.headers = l4 + doff;
  out.payload = ipEnd - out.headers;
  out.seq = be32(f, l4 + 4);
  out.flags = flags;
  return true;
}

/** The pseudo-header's sum (not folded) for a TCP segment of `tcpLen` bytes. */
function pseudoSum(f: Buffer, ipv6: boolean, tcpLen: number): number {
  const s = ipv6 ? sum16(f, 22, 54, 0) : sum16(f, 26, 34, 0);
  return s + 6 + (tcpLen & 0xffff) + Math.floor(tcpLen / 0x10000);
}

/** Same bytes in [from, to) of two frames. */
function same(a: Buffer, b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether `b` continues the run that `first` began and `last` (parsed as `l`) ends. */
function continues(first: Buffer, f: Seg, last: Buffer, l: Seg, b: Buffer, s: Seg): boolean {
  if (s.ipv6 !== f.ipv6 || s.headers !== f.headers || s.payload > f.payload) return false;
  if (l.payload < f.payload || (l.flags & TCP_PSH) !== 0) return false; // a short or PSH segment ends a run
  if (s.seq !== (l.seq + l.payload) >>> 0) return false;
  if ((s.flags & ~TCP_PSH) !== (f.flags & ~TCP_PSH)) return false;
  const l4 = f.l4;
  if (!same(first, b, 0, 14)) return false;
  if (f.ipv6) {
    if (!same(first, b, 14, 18) || !same(first, b, 20, 54)) return false;
  } else {
    // Version/IHL and TOS; flags, fragment offset, TTL and protocol; addresses. The id counts up by one.
    if (!same(first, b, 14, 16) || !same(first, b, 20, 24) || !same(first, b, 26, 34)) return false;
    if (be16(b, 18) !== ((be16(last, 18) + 1) & 0xffff)) return false;
  }
  // Ports; ack, data offset, window (flags compared above); urgent pointer and options.
  return (
    same(first, b, l4, l4 + 4) && same(first, b, l4 + 8, l4 + 13) && same(first, b, l4 + 14, l4 + 16) && same(first, b, l4 + 18, f.headers)
  );
}

export class TcpCoalescer {
  /** `sum`: the TAP addon's C sum where it has one (the check runs over every byte of every segment). */
  constructor(
    readonly counters: CoalesceCounters = { superFrames: 0, segments: 0, badChecksum: 0 },
    private readonly sum: InetSum = inetSum,
  ) {}
  private readonly hdr = Buffer.alloc(VNET_HDR_LEN);
  // One super-frame at a time: the sink writes it before the next is built.
  private readonly scratch = Buffer.allocUnsafe(MAX_RUN_PAYLOAD + 256);
  private readonly plain: Buffer[] = [];
  private readonly run: Buffer[] = [];
  private readonly first: Seg = { ipv6: false, l4: 0, headers: 0, payload: 0, seq: 0, flags: 0 };
  private last: Seg = { ipv6: false, l4: 0, headers: 0, payload: 0, seq: 0, flags: 0 };
  private cur: Seg = { ipv6: false, l4: 0, headers: 0, payload: 0, seq: 0, flags: 0 };
  private runPayload = 0;

  /** Passes `frames` to `sink` in order, runs of one flow's TCP segments as super-frames. */
  coalesce(frames: readonly Buffer[], sink: CoalesceSink): void {
    for (const fr of frames) {
      const s = this.cur;
      const tcp = parseSegment(fr, s);
      if (tcp && this.sum(fr, s.l4, fr.length, pseudoSum(fr, s.ipv6, fr.length - s.l4)) !== 0xffff) {
        this.counters.badChecksum++;
        this.endRun(sink);
        this.plain.push(fr);
        continue;
      }
      if (!tcp) {
        this.endRun(sink);
        this.plain.push(fr);
        continue;
      }
      const first = this.run[0];
      const last = this.run[this.run.length - 1];
      if (
        first !== undefined &&
        last !== undefined &&
        this.run.length < MAX_RUN_SEGMENTS &&
        this.runPayload + s.payload <= MAX_RUN_PAYLOAD &&
        continues(first, this.first, last, this.last, fr, s)
      ) {
        this.run.push(fr);
        this.runPayload += s.payload;
        [this.last, this.cur] = [s, this.last];
        continue;
      }
      this.endRun(sink);
      this.run.push(fr);
      this.runPayload = s.payload;
      Object.assign(this.first, s);
      [this.last, this.cur] = [s, this.last];
    }
    this.endRun(sink);
    this.flushPlain(sink);
  }

  // The sink consumes the list during the call (a TAP write): the same array serves every batch.
  private flushPlain(sink: CoalesceSink): void {
    if (this.plain.length === 0) return;
    sink.plain(this.plain);
    this.plain.length = 0;
  }

  /** A run of one stays a plain frame; a longer one leaves as a super-frame, after the plain frames before it. */
  private endRun(sink: CoalesceSink): void {
    const run = this.run;
    if (run.length === 0) return;
    if (run.length === 1) {
      this.plain.push(run[0] as Buffer);
      run.length = 0;
      return;
    }
    this.flushPlain(sink);
    const f = this.first;
    const head = run[0] as Buffer;
    const out = this.scratch;
    head.copy(out, 0, 0, f.headers);
    let at = f.headers;
    for (const seg of run) at += seg.copy(out, at, f.headers);
    const frame = out.subarray(0, at);
    const tcpLen = at - f.l4;
    if (f.ipv6) frame.writeUInt16BE(tcpLen, 18);
    else {
      frame.writeUInt16BE(at - 14, 16);
      ipv4Checksum(frame, 14, 20);
    }
    // PSH of the run's last segment; the checksum field holds the pseudo-header sum (NEEDS_CSUM).
    frame[f.l4 + 13] = f.flags | (this.last.flags & TCP_PSH);
    frame.writeUInt16BE(fold(pseudoSum(frame, f.ipv6, tcpLen)), f.l4 + 16);
    writeVnetHdr(this.hdr, 0, {
      flags: VNET_F_NEEDS_CSUM,
      gsoType: f.ipv6 ? GSO_TCPV6 : GSO_TCPV4,
      hdrLen: f.headers,
      gsoSize: f.payload,
      csumStart: f.l4,
      csumOffset: 16,
    });
    this.counters.superFrames++;
    this.counters.segments += run.length;
    const n = run.length;
    run.length = 0;
    sink.superFrame(this.hdr, frame, n);
  }
}
