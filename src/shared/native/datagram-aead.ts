// SPDX-License-Identifier: UNLICENSED
// The datagram channel's AEAD in C (native/tap/aead.c), as a backend of shared/tunnel/datagram/aead.ts:
// one cipher context per epoch key, made at its first use and freed when the key is retired (or, for a
// look-ahead key never retired, when it is collected). Trusted only after it has sealed and opened a
// datagram exactly as node:crypto does, with both ciphers: an addon built against another OpenSSL, or a
// node that lends it none, leaves the channel on node:crypto and says why.
import { randomBytes } from 'node:crypto';
import { segmentOffload, type Offload } from '../l2/tso-segment.js';
import { aead, HEADER_LENGTH, nodeCryptoAead, segmentDatagrams, TAG_LENGTH, useAead, type AeadBackend, type SegmentCut } from '../tunnel/datagram/aead.js';
import type { DatagramCipher, EpochKeys } from '../tunnel/datagram/keys.js';
import { loadTapAddon, type AeadHandle, type TapAddon } from './addon.js';

const ALG: Record<DatagramCipher, number> = { 'AES-256-GCM': 0, 'CHACHA20-POLY1305': 1 };

export type NativeAeadResult = { ok: true; backend: AeadBackend } | { ok: false; reason: string };

type AeadCalls = Required<Pick<TapAddon, 'aeadNew' | 'aeadFree' | 'aeadSeal' | 'aeadOpen'>> & Pick<TapAddon, 'aeadSealSegments'>;

function backendOf(addon: AeadCalls): AeadBackend {
  const contexts = new WeakMap<EpochKeys, AeadHandle>();
  const context = (cipher: DatagramCipher, keys: EpochKeys): AeadHandle => {
    let h = contexts.get(keys);
    if (h === undefined) {
      h = addon.aeadNew(ALG[cipher], keys.key, keys.iv);
      contexts.set(keys, h);
    }
    return h;
  };
  return {
    name: 'native',
    seal(cipher, keys, out, counter, parts) {
      const [a, b] = parts;
      // The channel seals [kind, frame]; anything longer is rare enough for node:crypto.
      if (parts.length > 2 || a === undefined) return nodeCryptoAead.seal(cipher, keys, out, counter, parts);
      if (b === undefined) addon.aeadSeal(context(cipher, keys), out, keys.epoch, counter, a);
      else addon.aeadSeal(context(cipher, keys), out, keys.epoch, counter, a, b);
    },
    open(cipher, keys, d, counter) {
      // In place: the payload overwrites the ciphertext it came from (GCM and ChaCha20-Poly1305 decrypt
      // in place), so opening allocates nothing. Each new ArrayBuffer here, a 64 KiB slab per 40-odd
      // datagrams, was external memory V8 answered with a scavenge and a mark-compact several times a
      // second at 2 Gbit/s. A datagram that is not authentic is left garbage and dropped.
      const out = d.subarray(HEADER_LENGTH, d.length - TAG_LENGTH);
      return addon.aeadOpen(context(cipher, keys), d, keys.epoch, counter, out) ? out : null;
    },
    release(keys) {
      const h = contexts.get(keys);
      if (h === undefined) return;
      contexts.delete(keys);
      addon.aeadFree(h);
    },
    ...(addon.aeadSealSegments
      ? {
          sealSegments: (cipher, keys, out, head, counter, kind, frame, c) =>
            addon.aeadSealSegments?.(context(cipher, keys), out, head, counter, kind, frame, c.l3, c.l4, c.headers, c.ipEnd, c.ipv6, c.mss) ?? 0,
        }
      : {}),
  };
}

/**
 * A TCP super-frame (Ethernet, IPv4 or IPv6, TCP with options, `payload` bytes) as a TAP with TSO hands
 * it over, parsed as parseOffload() would: for checking sealSegments against the TypeScript path.
 */
export function sampleSuperFrame(ipv6: boolean, payload: number, mss: number): { frame: Buffer; cut: SegmentCut; offload: Offload } {
  const l3 = 14;
  const ip = ipv6 ? 40 : 20;
  const l4 = l3 + ip;
  const headers = l4 + 32;
  const frame = randomBytes(headers + payload);
  frame.writeUInt16BE(ipv6 ? 0x86dd : 0x0800, 12);
  if (ipv6) {
    frame[l3] = 0x60;
    frame.writeUInt16BE(32 + payload, l3 + 4);
    frame[l3 + 6] = 6;
  } else {
    frame[l3] = 0x45;
    frame.writeUInt16BE(ip + 32 + payload, l3 + 2);
    frame.writeUInt16BE(0x4000, l3 + 6); // DF, no fragment
    frame[l3 + 9] = 6;
  }
  frame[l4 + 12] = 8 << 4; // 32-byte TCP header
  frame[l4 + 13] = 0x18 | 0x80 | 0x01; // PSH ACK, CWR, FIN: only the first keeps CWR, only the last PSH and FIN
  const hdr = { flags: 1, gsoType: ipv6 ? 4 : 1, hdrLen: headers, gsoSize: mss, csumStart: l4, csumOffset: 16 };
  const segments = Math.ceil(payload / mss);
  const offload: Offload = { hdr, gso: true, ipv6, l3, l4, headers, ipEnd: headers + payload, mss, segments };
  return { frame, cut: { l3, l4, headers, ipEnd: headers + payload, ipv6, mss }, offload };
}

/**
 * What sealSegments() must write for `s` cut at `mss`, made the TypeScript way: segmentOffload(), then each
 * segment sealed by node:crypto as a FRAME datagram with `head` and counter `counter + i`, back to back.
 */
export function referenceSegments(
  cipher: DatagramCipher,
  keys: EpochKeys,
  head: Buffer,
  counter: number,
  s: { frame: Buffer; offload: Offload },
  mss: number,
): { count: number; bytes: Buffer } {
  const segs: Buffer[] = [];
  segmentOffload(s.offload, s.frame, segs, mss);
  const sealed = segs.map((seg, i) => {
    const d = Buffer.alloc(12 + 1 + seg.length + TAG_LENGTH);
    head.copy(d);
    d.writeUIntBE(counter + i, 6, 6);
    nodeCryptoAead.seal(cipher, keys, d, counter + i, [Buffer.of(0), seg]);
    return d;
  });
  return { count: segs.length, bytes: Buffer.concat(sealed) };
}

/** sealSegments' datagrams against referenceSegments(); a reason when they differ. */
function segmentsDisagree(native: AeadBackend, cipher: DatagramCipher, ipv6: boolean): string | null {
  if (native.sealSegments === undefined) return null;
  const keys: EpochKeys = { epoch: 3, key: randomBytes(32), iv: randomBytes(12) };
  // An odd last segment: the checksum's trailing byte.
  const s = sampleSuperFrame(ipv6, 2_501, 1_000);
  const head = Buffer.of(0x48, 0, 0, 9, 0, 3);
  const mine = Buffer.alloc(segmentDatagrams(s.cut).length);
  const n = native.sealSegments(cipher, keys, mine, head, 77, 0, s.frame, s.cut);
  const theirs = referenceSegments(cipher, keys, head, 77, s, s.cut.mss);
  native.release(keys);
  if (n !== theirs.count || !mine.equals(theirs.bytes))
    return `${cipher}: the addon's segmented ${ipv6 ? 'IPv6' : 'IPv4'} super-frame differs from segmentOffload() sealed by node:crypto`;
  return null;
}

/** Seals and opens one datagram per cipher both ways against node:crypto; a reason when they differ. */
function disagreement(native: AeadBackend): string | null {
  for (const cipher of Object.keys(ALG) as DatagramCipher[]) {
    const keys: EpochKeys = { epoch: 7, key: randomBytes(32), iv: randomBytes(12) };
    const parts = [Buffer.of(0), randomBytes(300)];
    const mine = Buffer.alloc(12 + 301 + TAG_LENGTH);
    randomBytes(12).copy(mine);
    const theirs = Buffer.from(mine);
    native.seal(cipher, keys, mine, 42, parts);
    nodeCryptoAead.seal(cipher, keys, theirs, 42, parts);
    if (!mine.equals(theirs)) return `${cipher}: the addon's datagram differs from node:crypto's`;
    // One bit of the ciphertext flipped, taken before the open below writes the plaintext over it.
    const forged = Buffer.from(theirs);
    forged[20] = (forged[20] ?? 0) ^ 1;
    if (!native.open(cipher, keys, theirs, 42)?.equals(Buffer.concat(parts))) return `${cipher}: the addon cannot open node:crypto's datagram`;
    if (native.open(cipher, keys, forged, 42) !== null) return `${cipher}: the addon accepted a forged datagram`;
    native.release(keys);
    for (const v6 of [false, true]) {
      const why = segmentsDisagree(native, cipher, v6);
      if (why !== null) return why;
    }
  }
  return null;
}

/** The addon's AEAD if this process can use it (checked), else why not. */
export function nativeAead(load: () => TapAddon = loadTapAddon): NativeAeadResult {
  let addon: TapAddon;
  try {
    addon = load();
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  const { aeadNew, aeadFree, aeadSeal, aeadOpen, aeadSealSegments } = addon;
  if (!aeadNew || !aeadFree || !aeadSeal || !aeadOpen) return { ok: false, reason: 'this build of the addon has no AEAD' };
  const backend = backendOf({
    aeadNew: aeadNew.bind(addon),
    aeadFree: aeadFree.bind(addon),
    aeadSeal: aeadSeal.bind(addon),
    aeadOpen: aeadOpen.bind(addon),
    // An older build seals frame by frame; super-frames then stay with the kernel (the TAP segments them).
    ...(aeadSealSegments ? { aeadSealSegments: aeadSealSegments.bind(addon) } : {}),
  });
  try {
    const why = disagreement(backend);
    return why === null ? { ok: true, backend } : { ok: false, reason: why };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

let installed: NativeAeadResult | null = null;

/**
 * Once per process, at the first datagram channel: the native AEAD if it checks out, else node:crypto
 * with the reason logged. `CONNECTOR_DATAGRAM_AEAD=node` keeps node:crypto (to compare, or to rule it out).
 */
export function installDatagramAead(log: { info(msg: string, f?: Record<string, unknown>): void }, env = process.env): string {
  if (installed === null) {
    installed = env.CONNECTOR_DATAGRAM_AEAD === 'node' ? { ok: false, reason: 'CONNECTOR_DATAGRAM_AEAD=node' } : nativeAead();
    if (installed.ok) useAead(installed.backend);
    log.info('datagram AEAD', installed.ok ? { backend: 'native' } : { backend: 'node:crypto', reason: installed.reason });
  }
  return aead().name;
}
