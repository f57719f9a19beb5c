// SPDX-License-Identifier: UNLICENSED
// One session's datagram channel, the same at both ends (docs/datagram.md): keys from the TLS exporter,
// OpenVPN's DATA_V2 epoch layout (codec.ts), a kind byte inside the ciphertext (FRAME, PING, PONG), and
// the path monitor that decides whether this side's data leaves as datagrams or in TLS. Pure apart
// from node:crypto: datagrams in, datagrams and decisions out, time from the caller.
//
// Path monitor (each side decides its own send path; receivers take frames from either path):
//   - A side sends PINGs that ask for an answer: while probing (every 250 ms), while its path is up and
//     frames flowed in the last 2 s (every 500 ms), and, on the agent only, as the NAT keepalive (15 s).
//   - The path is up once one of its own PINGs is answered by an authentic PONG.
//   - It is dark once its oldest unanswered PING is older than darkAfterMs (1 s): frames go to TLS.
//   - Probing that finds nothing within 1 s gives up; the agent probes again after 2 s, doubling up to
//     reprobeMaxMs (60 s). The headend never probes on its own (a NAT in front of the agent would not
//     let it in): an authentic datagram from the agent starts its probe.
//
// Path MTU: path-mtu.ts searches from 1,280 bytes up with padded PINGs and confirms the result while frames
// flow (black-hole detection). A frame too large for one datagram at the PLPMTU leaves as a HEAD/TAIL pair
// (reassembly.ts) when the peer said it rebuilds them; toward an older peer it leaves whole, as before. The
// sockets set DF without local fragmentation.
//
// Small frames (an ACK stream, VoIP, ARP) sealed in the same task share a BUNDLE datagram when the peer said
// it unpacks them (`dg-bundle`): one AEAD call, one packet on the WAN and one receive for up to a datagram's
// worth. Nothing waits for company: the caller flushes at the end of the task (flushBundle), and a frame
// that does not go in a bundle flushes it first, so frames leave in the order they came.
import { aead, segmentDatagrams } from './aead.js';
import { DatagramReceiver, MAX_COUNTER, OP_DATA_V2, OVERHEAD, seal } from './codec.js';
import { segmentOffload, type Offload } from '../../l2/tso-segment.js';
import { KIND_HEAD, KIND_TAIL, Reassembly } from './reassembly.js';
import { PathMtu } from './path-mtu.js';
import { EpochChain, exporterContext, EXPORTER_LABEL, initialSecrets, KEY_BLOCK_LENGTH, type DatagramCipher } from './keys.js';

/** Hello and hello-ack capability of an end that rebuilds HEAD/TAIL pairs (sends them only to such a peer). */
export const SPLIT_CAPABILITY = 'dg-split';
/** Hello and hello-ack capability of an end that unpacks BUNDLE datagrams (sent only to such a peer). */
export const BUNDLE_CAPABILITY = 'dg-bundle';
export const KIND_FRAME = 0x00;
/** Several frames in one datagram: [u16 length, frame] repeated, at least two. */
export const KIND_BUNDLE = 0x03;
/** Frames up to this size go in bundles; a larger one costs more to copy than its own datagram costs. */
export const BUNDLE_FRAME_MAX = 512;
const MIN_FRAME = 14;
export const KIND_PING = 0x10;
export const KIND_PONG = 0x11;
const PING_ANSWER = 1;
const PING_PMTU = 2;
export { BASE_PLPMTU, PLPMTU_CANDIDATES } from './path-mtu.js';
/** The kind byte as the first part of a sealed payload (no per-datagram allocation for it). */
const KIND_BYTES: Record<number, Buffer> = {
  [KIND_FRAME]: Buffer.of(KIND_FRAME),
  [KIND_HEAD]: Buffer.of(KIND_HEAD),
  [KIND_TAIL]: Buffer.of(KIND_TAIL),
  [KIND_BUNDLE]: Buffer.of(KIND_BUNDLE),
  [KIND_PING]: Buffer.of(KIND_PING),
  [KIND_PONG]: Buffer.of(KIND_PONG),
};
/** PING/PONG body: u8 flags | u32 id | u64 sender's ms (echoed). */
const PING_BODY = 13;
/** AES-GCM: a new epoch key long before the usage limit (2^28 packets of 1,500 bytes would still be safe). */
const EPOCH_LIMIT = Math.min(2 ** 24, MAX_COUNTER);

export type DgTx = 'datagram' | 'tls';

export interface ChannelTiming {
  readonly probeEveryMs: number;
  readonly probeGiveUpMs: number;
  readonly activePingMs: number;
  readonly activeWindowMs: number;
  readonly darkAfterMs: number;
  readonly keepaliveMs: number;
  readonly reprobeFirstMs: number;
  readonly reprobeMaxMs: number;
}

export const CHANNEL_TIMING: ChannelTiming = {
  probeEveryMs: 250,
  probeGiveUpMs: 1_000,
  activePingMs: 500,
  activeWindowMs: 2_000,
  darkAfterMs: 1_000,
  keepaliveMs: 15_000,
  reprobeFirstMs: 2_000,
  reprobeMaxMs: 60_000,
};

export interface ChannelOptions {
  readonly role: 'agent' | 'headend';
  readonly cipher: DatagramCipher;
  readonly peerId: number;
  /** 256 bytes from the TLS exporter: exportKeyBlock(). */
  readonly keyBlock: Buffer;
  readonly timing?: Partial<ChannelTiming>;
  /** The outer path is IPv6 (40-byte header instead of 20). */
  readonly ipv6?: boolean;
  /** The peer rebuilds HEAD/TAIL pairs (capability `dg-split`); else a frame too large leaves whole. */
  readonly peerSplits?: boolean;
  /** The peer unpacks BUNDLE datagrams (capability `dg-bundle`); else every frame is a datagram of its own. */
  readonly peerBundles?: boolean;
  /** The largest outer packet a search may find; default 1500. */
  readonly maxPlpmtu?: number;
  /** Key usage limits (tests shorten them): datagrams per epoch, and the last epoch this session may use. */
  readonly limits?: { readonly epochPackets?: number; readonly lastEpoch?: number };
  /** Memory for a datagram about to be sent (the socket's send arena); a new Buffer by default. */
  readonly alloc?: (size: number) => Buffer;
}

/** The exporter call both ends make; the context binds the keys to the agreed cipher and peer id. */
export function exportKeyBlock(
  exporter: (length: number, label: string, context: Buffer) => Buffer,
  cipher: DatagramCipher,
  peerId: number,
  generation = 0,
): Buffer {
  return exporter(KEY_BLOCK_LENGTH, EXPORTER_LABEL, exporterContext(cipher, peerId, generation));
}

export type Received =
  | { kind: 'frame'; frame: Buffer }
  | { kind: 'frames'; frames: Buffer[] }
  | { kind: 'half' }
  | { kind: 'ping'; answer: Buffer | null }
  | { kind: 'pong' }
  | { kind: 'drop'; reason: string };

export interface ChannelCounters {
  datagramsOut: number;
  datagramsIn: number;
  framesOut: number;
  framesIn: number;
  /** Frames sent as a HEAD/TAIL pair. */
  splits: number;
  /** BUNDLE datagrams sent (each carried two frames or more). */
  bundles: number;
  switches: number;
  drops: Record<string, number>;
}

export class DatagramChannel {
  readonly counters: ChannelCounters = {
    datagramsOut: 0,
    datagramsIn: 0,
    framesOut: 0,
    framesIn: 0,
    splits: 0,
    bundles: 0,
    switches: 0,
    drops: {},
  };
  /** Where this side's data leaves now. */
  tx: DgTx = 'tls';
  /** Why tx last changed (status, audit). */
  reason = 'start';
  /** The path has been up at least once: the TCP MSS of new connections follows the PLPMTU from then on. */
  everUp = false;
  readonly #o: ChannelOptions;
  readonly #t: ChannelTiming;
  readonly #txChain: EpochChain;
  readonly #rxChain: EpochChain;
  readonly #receiver: DatagramReceiver;
  #counter = 0;
  readonly #epochPackets: number;
  readonly #lastEpoch: number;
  /** This session's keys have carried all they may: data stays on TLS, nothing more is sealed. */
  #spent = false;
  #pingId = 0;
  /** Sent PINGs not yet answered, oldest first: id -> sent at. */
  readonly #unanswered = new Map<number, number>();
  #probingSince: number | null = null;
  #nextProbeAt: number;
  #reprobeMs: number;
  #lastPingAt = Number.NEGATIVE_INFINITY;
  #lastFrameAt = Number.NEGATIVE_INFINITY;
  #destroyed = false;
  #reported: DgTx = 'tls';
  /** PMTU probes are PINGs too, but their loss says nothing about the path's liveness. */
  readonly #pmtu: PathMtu;
  readonly #reassembly = new Reassembly((reason) => this.#drop(reason));
  /** Small frames waiting for the end of the task, as [u16 length, frame] from byte 0 (copied: the caller's buffer may be reused). */
  #bundle: Buffer | null = null;
  #bundleUsed = 0;
  #bundled = 0;
  /** The first 6 header bytes of sealSuperFrame()'s datagrams, rewritten per call. */
  readonly #head = Buffer.alloc(6);
  /** When the last authentic datagram arrived. */
  lastAuthenticAt = Number.NEGATIVE_INFINITY;

  constructor(o: ChannelOptions, now: number) {
    if (o.keyBlock.length !== KEY_BLOCK_LENGTH) throw new RangeError(`the key block is ${KEY_BLOCK_LENGTH} bytes`);
    this.#o = o;
    this.#t = { ...CHANNEL_TIMING, ...o.timing };
    const s = initialSecrets(o.keyBlock);
    const [tx, rx] = o.role === 'agent' ? [s.a2h, s.h2a] : [s.h2a, s.a2h];
    this.#txChain = new EpochChain(tx);
    this.#rxChain = new EpochChain(rx);
    s.a2h.fill(0);
    s.h2a.fill(0);
    this.#receiver = new DatagramReceiver(o.cipher, o.peerId, 0, (epoch) => {
      const cur = this.#rxChain.current;
      if (epoch === cur.epoch) return cur;
      return epoch === cur.epoch + 1 ? this.#rxChain.peekNext() : null;
    });
    this.#pmtu = new PathMtu(o.maxPlpmtu ?? 1500);
    this.#epochPackets = o.limits?.epochPackets ?? EPOCH_LIMIT;
    this.#lastEpoch = Math.min(o.limits?.lastEpoch ?? 0xffff, 0xffff);
    this.#reprobeMs = this.#t.reprobeFirstMs;
    // The agent probes at once; the headend waits for the agent's first datagram.
    this.#nextProbeAt = o.role === 'agent' ? now : Number.POSITIVE_INFINITY;
  }

  /** The largest outer packet (IP header included) this side's path carries: the split threshold. */
  get plpmtu(): number {
    return this.#pmtu.plpmtu;
  }

  /** Times the path stopped carrying its PLPMTU (a black hole) and the search began again. */
  get blackHoles(): number {
    return this.#pmtu.blackHoles;
  }

  /** The largest frame one datagram carries at the current PLPMTU. */
  get maxWhole(): number {
    return this.plpmtu - (this.#o.ipv6 === true ? 40 : 20) - 8 - CHANNEL_OVERHEAD;
  }

  /**
   * Seals one Ethernet frame for the wire, as one datagram or a HEAD/TAIL pair, handed to `send` (the
   * caller decided tx is 'datagram'). False when it cannot go as datagrams (larger than a pair): TLS takes it.
   */
  sealFrame(frame: Uint8Array, now: number, send: (d: Buffer) => void): boolean {
    if (this.#spent) return false;
    const room = this.maxWhole;
    if (this.#o.peerBundles === true && frame.length <= BUNDLE_FRAME_MAX) {
      this.#toBundle(frame, room, send);
      this.#lastFrameAt = now;
      this.counters.framesOut++;
      return true;
    }
    this.flushBundle(send);
    if (frame.length <= room || this.#o.peerSplits !== true) send(this.#seal(KIND_FRAME, frame));
    else if (frame.length > 2 * room) return false;
    else {
      // Both halves under one epoch, so the pair is consecutive counters of the same keys.
      if (this.#counter + 2 > this.#epochPackets) this.#counter = this.#epochPackets;
      const mid = Math.ceil(frame.length / 2);
      send(this.#seal(KIND_HEAD, frame.subarray(0, mid)));
      send(this.#seal(KIND_TAIL, frame.subarray(mid)));
      this.counters.splits++;
    }
    this.#lastFrameAt = now;
    this.counters.framesOut++;
    return true;
  }

  /** Frames wait in a bundle: the caller must flushBundle() before its task ends. */
  get bundlePending(): boolean {
    return this.#bundled > 0;
  }

  /**
   * Seals the small frames gathered since the last flush (one alone as a plain FRAME datagram) and hands
   * the datagram to `send`. Nothing to do when none wait or the channel is gone (its keys with it).
   */
  flushBundle(send: (d: Buffer) => void): void {
    const n = this.#bundled;
    if (n === 0) return;
    const b = this.#bundle as Buffer;
    const used = this.#bundleUsed;
    this.#bundled = 0;
    this.#bundleUsed = 0;
    if (this.#destroyed) return;
    if (n === 1) return send(this.#seal(KIND_FRAME, b.subarray(2, used)));
    this.counters.bundles++;
    send(this.#seal(KIND_BUNDLE, b.subarray(0, used)));
  }

  #toBundle(frame: Uint8Array, room: number, send: (d: Buffer) => void): void {
    if (this.#bundled > 0 && this.#bundleUsed + 2 + frame.length > room) this.flushBundle(send);
    // Made once per channel that ever bundles, as large as its largest path (a bundle never outgrows room).
    const b = (this.#bundle ??= Buffer.allocUnsafe(Math.max(this.#o.maxPlpmtu ?? 1500, 1500)));
    const at = this.#bundleUsed;
    b[at] = frame.length >>> 8;
    b[at + 1] = frame.length & 255;
    b.set(frame, at + 2);
    this.#bundleUsed = at + 2 + frame.length;
    this.#bundled++;
  }

  /** The AEAD backend cuts and seals super-frames itself (one call per super-frame): sealSuperFrame() is worth calling. */
  get sealsSuperFrames(): boolean {
    return aead().sealSegments !== undefined;
  }

  /**
   * Seals a validated TCP super-frame (a TAP's, with TSO) as one datagram per segment, cut to fit the
   * current PLPMTU (a TCP receiver takes any segment up to the MSS it advertised), all under one epoch and
   * handed to `send` in order. With a backend that cuts and seals in C, one call for the whole super-frame;
   * else segmentOffload() and sealFrame() per segment. Returns the segments sent; 0 when it cannot go as
   * datagrams (nothing was sent): TLS takes it.
   */
  sealSuperFrame(o: Offload, frame: Uint8Array, now: number, send: (d: Buffer) => void): number {
    // No payload to cut (a bare header the kernel would not send as GSO): the caller's frame path takes it.
    if (this.#spent || !o.gso || o.ipEnd <= o.headers) return 0;
    this.flushBundle(send);
    const mss = Math.min(o.mss, this.maxWhole - o.headers);
    if (mss < 1) return 0;
    const cut = { l3: o.l3, l4: o.l4, headers: o.headers, ipEnd: o.ipEnd, ipv6: o.ipv6, mss };
    const size = segmentDatagrams(cut);
    const be = aead();
    if (be.sealSegments === undefined || size.count > this.#epochPackets) {
      const segs: Buffer[] = [];
      segmentOffload(o, frame, segs, mss);
      let sent = 0;
      // Only the session's last epoch running out stops this part way; the rest is lost as on a full queue.
      for (const seg of segs)
        if (this.sealFrame(seg, now, send)) sent++;
        else if (sent > 0) this.#drop('keys-spent');
      return sent;
    }
    const first = this.#take(size.count);
    const keys = this.#txChain.current;
    const head = this.#head;
    head[0] = OP_DATA_V2 << 3;
    head[1] = (this.#o.peerId >>> 16) & 255;
    head[2] = (this.#o.peerId >>> 8) & 255;
    head[3] = this.#o.peerId & 255;
    head[4] = keys.epoch >>> 8;
    head[5] = keys.epoch & 255;
    const out = (this.#o.alloc ?? Buffer.allocUnsafe)(size.length);
    let n: number;
    try {
      n = be.sealSegments(this.#o.cipher, keys, out, head, first, KIND_FRAME, frame, cut);
    } catch {
      // C refused what JS validated (a bug, not input): counted, and the frame path carries the super-frame.
      this.#drop('seal-segments');
      return 0;
    }
    // Equal-sized datagrams back to back, the last one shorter: what one UDP GSO send takes.
    const full = OVERHEAD + 1 + o.headers + mss;
    for (let i = 0, at = 0; i < n; i++, at += full) send(out.subarray(at, Math.min(at + full, size.length)));
    this.#lastFrameAt = now;
    this.counters.framesOut += n;
    return n;
  }

  /**
   * Opens one datagram from the wire; only an authentic one changes any state. The frames returned may
   * be views of `d` itself (opened in place): valid as long as `d` is.
   */
  receive(d: Buffer, now: number): Received {
    if (this.#destroyed) return this.#drop('closed');
    const r = this.#receiver.open(d);
    if (!r.ok) return this.#drop(r.reason);
    if (r.epoch === this.#rxChain.current.epoch + 1) this.#rxChain.advance();
    this.lastAuthenticAt = now;
    this.counters.datagramsIn++;
    const p = r.payload;
    const kind = p[0];
    if (kind === KIND_FRAME) {
      if (p.length < 1 + MIN_FRAME) return this.#drop('frame-short');
      this.#lastFrameAt = now;
      this.counters.framesIn++;
      return { kind: 'frame', frame: p.subarray(1) };
    }
    if (kind === KIND_BUNDLE) {
      const frames = unbundle(p);
      if (frames === null) return this.#drop('bundle-layout');
      this.#lastFrameAt = now;
      this.counters.framesIn += frames.length;
      return { kind: 'frames', frames };
    }
    if (kind === KIND_HEAD || kind === KIND_TAIL) {
      const frame = this.#reassembly.offer(kind, r.epoch, r.counter, p.subarray(1), now);
      if (frame === null) return { kind: 'half' };
      this.#lastFrameAt = now;
      this.counters.framesIn++;
      return { kind: 'frame', frame };
    }
    if ((kind !== KIND_PING && kind !== KIND_PONG) || p.length < 1 + PING_BODY) return this.#drop('kind');
    const id = p.readUInt32BE(2);
    if (kind === KIND_PONG) {
      // A PMTU probe answered: the path carried a packet of its size, so every smaller one too.
      if (this.#pmtu.answered(id)) return { kind: 'pong' };
      if (this.#unanswered.has(id)) {
        // Every PING up to this one is answered or lost behind it: the path works now.
        for (const k of [...this.#unanswered.keys()]) {
          this.#unanswered.delete(k);
          if (k === id) break;
        }
        if (this.tx !== 'datagram' && !this.#spent) this.#switch('datagram', 'probe-answered');
        if (!this.everUp) this.#pmtu.started(now);
        this.everUp = true;
        this.#probingSince = null;
        this.#reprobeMs = this.#t.reprobeFirstMs;
      }
      return { kind: 'pong' };
    }
    // The headend learns the path works upstream; it proves its own direction with a PING of its own.
    if (this.#o.role === 'headend' && this.tx === 'tls' && this.#probingSince === null && this.#nextProbeAt > now) this.#nextProbeAt = now;
    if (((p[1] ?? 0) & PING_ANSWER) === 0 || this.#spent) return { kind: 'ping', answer: null };
    // The PING's body echoed, its flags cleared: a PONG never asks for an answer.
    const body = Buffer.from(p.subarray(1, 1 + PING_BODY));
    body[0] = 0;
    return { kind: 'ping', answer: this.#seal(KIND_PONG, body) };
  }

  /**
   * Called every tick (100 ms): the PINGs due now (sealed, to send), and whether tx changed. Probing
   * gives up, an active path that stops answering goes dark, a dark agent probes again later.
   */
  tick(now: number): { send: Buffer[]; changed: boolean } {
    const send: Buffer[] = [];
    if (this.#destroyed) return { send, changed: false };
    if (this.#spent) {
      const changed = this.tx !== this.#reported;
      this.#reported = this.tx;
      return { send, changed };
    }
    const oldest = this.#unanswered.values().next();
    if (this.tx === 'datagram' && !oldest.done && now - oldest.value > this.#t.darkAfterMs) {
      this.#switch('tls', 'dark');
      this.#unanswered.clear();
      this.#pmtu.pathDark();
      this.#scheduleReprobe(now);
    }
    if (this.#probingSince !== null && now - this.#probingSince >= this.#t.probeGiveUpMs && this.tx === 'tls') {
      this.#probingSince = null;
      this.#unanswered.clear();
      this.reason = 'probe-unanswered';
      this.#scheduleReprobe(now);
    }
    if (this.#probingSince === null && this.tx === 'tls' && now >= this.#nextProbeAt) {
      this.#probingSince = now;
      this.#nextProbeAt = Number.POSITIVE_INFINITY;
    }
    const every =
      this.#probingSince !== null
        ? this.#t.probeEveryMs
        : this.tx === 'datagram' && now - this.#lastFrameAt < this.#t.activeWindowMs
          ? this.#t.activePingMs
          : this.tx === 'datagram' && this.#o.role === 'agent'
            ? this.#t.keepaliveMs
            : Number.POSITIVE_INFINITY;
    if (now - this.#lastPingAt >= every) send.push(this.#ping(now));
    if (this.tx === 'datagram') {
      const active = now - this.#lastFrameAt < this.#t.activeWindowMs;
      for (const p of this.#pmtu.due(now, active, () => (this.#pingId = (this.#pingId + 1) >>> 0))) send.push(this.#padded(p.id, p.size));
    }
    // A change since the last tick, wherever it happened (an answered PING switches in receive()).
    const changed = this.tx !== this.#reported;
    this.#reported = this.tx;
    return { send, changed };
  }

  /**
   * The peer said (dg-state, over TLS) that its data left datagrams: its PINGs went unanswered, so this
   * side's datagrams are likely lost too. Back to TLS now rather than after a dark interval of its own;
   * the peer's next datagram starts a new probe.
   */
  peerOnTls(): void {
    if (this.tx !== 'datagram') return;
    this.#switch('tls', 'peer-on-tls');
    this.#unanswered.clear();
    this.#pmtu.pathDark();
    this.#probingSince = null;
  }

  /** Keys and state gone with the TLS session: nothing opens or seals after this. */
  destroy(): void {
    this.#destroyed = true;
    this.#txChain.destroy();
    this.#rxChain.destroy();
    this.#unanswered.clear();
    this.#pmtu.clear();
    this.#reassembly.clear();
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #ping(now: number): Buffer {
    this.#lastPingAt = now;
    this.#pingId = (this.#pingId + 1) >>> 0;
    this.#unanswered.set(this.#pingId, now);
    // Bounded: a dark path is declared long before this many are outstanding.
    if (this.#unanswered.size > 64) this.#unanswered.delete(this.#unanswered.keys().next().value as number);
    const body = Buffer.alloc(PING_BODY);
    body[0] = PING_ANSWER;
    body.writeUInt32BE(this.#pingId, 1);
    body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now))), 5);
    return this.#seal(KIND_PING, body);
  }

  /** A PING padded to an outer packet of `size` bytes: a path MTU probe. */
  #padded(id: number, size: number): Buffer {
    const headers = (this.#o.ipv6 === true ? 40 : 20) + 8;
    const body = Buffer.alloc(size - headers - OVERHEAD - 1);
    body[0] = PING_ANSWER | PING_PMTU;
    body.writeUInt32BE(id, 1);
    return this.#seal(KIND_PING, body);
  }

  #scheduleReprobe(now: number): void {
    if (this.#o.role !== 'agent') return; // the headend waits for the agent's next datagram
    this.#nextProbeAt = now + this.#reprobeMs;
    this.#reprobeMs = Math.min(this.#reprobeMs * 2, this.#t.reprobeMaxMs);
  }

  #switch(tx: DgTx, reason: string): void {
    this.tx = tx;
    this.reason = reason;
    this.counters.switches++;
  }

  /** `n` consecutive counters of one epoch (the next epoch when this one has not that many left): the first. */
  #take(n: number): number {
    if (this.#counter + n > this.#epochPackets) {
      this.#txChain.advance();
      this.#counter = 0;
      // The last epoch this session may use: its datagrams go out, then the data moves to TLS for good
      // (a new TLS session brings new keys). 2^40 datagrams at the default limits: years at line rate.
      if (this.#txChain.current.epoch >= this.#lastEpoch) {
        this.#spent = true;
        this.#switch('tls', 'keys-spent');
      }
    }
    const first = this.#counter + 1;
    this.#counter += n;
    this.counters.datagramsOut += n;
    return first;
  }

  #seal(kind: number, body: Uint8Array): Buffer {
    const header = { keyId: 0, peerId: this.#o.peerId, counter: this.#take(1) };
    return seal(this.#o.cipher, this.#txChain.current, header, [KIND_BYTES[kind] ?? Buffer.of(kind), body], this.#o.alloc);
  }

  #drop(reason: string): Received {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
    return { kind: 'drop', reason };
  }
}

/**
 * The frames of an opened BUNDLE payload (views of it), or null when its layout is wrong: fewer than two
 * frames, one shorter than an Ethernet header, or a length past the end. An authentic peer never sends
 * that, so the whole datagram is dropped rather than guessed at.
 */
function unbundle(p: Buffer): Buffer[] | null {
  const frames: Buffer[] = [];
  let at = 1;
  while (at < p.length) {
    if (at + 2 > p.length) return null;
    const len = (p[at] as number) * 256 + (p[at + 1] as number);
    const end = at + 2 + len;
    if (len < MIN_FRAME || end > p.length) return null;
    frames.push(p.subarray(at + 2, end));
    at = end;
  }
  return frames.length >= 2 ? frames : null;
}

/** Bytes a datagram adds to a frame: header and tag, the kind byte. */
export const CHANNEL_OVERHEAD = OVERHEAD + 1;
