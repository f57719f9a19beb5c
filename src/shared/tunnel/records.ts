// SPDX-License-Identifier: UNLICENSED
// Tunnel stream framing: each record is `u16 length (big endian) | VXLAN header (8) | Ethernet frame`,
// where the length counts the VXLAN header and the frame. TLS hands us arbitrary chunks, so the decoder
// is incremental; it copies only a record that straddles chunks, and hands out views otherwise.
import { ETH_HEADER_LEN, ETH_MAX_FRAME } from '../l2/ethernet.js';
import { VXLAN_FLAG_I, VXLAN_HEADER_LEN, writeVxlanHeader } from '../l2/vxlan.js';

export const RECORD_LENGTH_LEN = 2;
/** Smallest record length: VXLAN header + Ethernet header. */
export const MIN_RECORD = VXLAN_HEADER_LEN + ETH_HEADER_LEN; // 22
/** Largest record length: VXLAN header + a frame with two VLAN tags (1522). */
export const MAX_RECORD = VXLAN_HEADER_LEN + ETH_MAX_FRAME; // 1530

/** Records skipped without losing sync (their length is still trustworthy). */
export const STREAM_DROPS = ['record-undersize', 'record-no-i-flag'] as const;
export type StreamDrop = (typeof STREAM_DROPS)[number];
/** Errors after which the stream cannot be resynchronised: the caller closes the connection. */
export const STREAM_ERRORS = ['record-oversize'] as const;
export type StreamError = (typeof STREAM_ERRORS)[number];

function checkFrame(vni: number, frame: Uint8Array): void {
  if (frame.length < ETH_HEADER_LEN || frame.length > ETH_MAX_FRAME) {
    throw new RangeError(
      `a tunnel record carries a ${ETH_HEADER_LEN}..${ETH_MAX_FRAME}-byte frame, got ${frame.length} bytes (vni ${vni})`,
    );
  }
}

/**
 * Writes one record at `dst[off]` and returns the offset just after it, so many records can be coalesced
 * into one buffer and written with one call. Throws RangeError on a frame outside 14..1522 bytes, a bad
 * VNI or a too-small `dst`: callers pass frames parseEthernet accepted, so that is a programming error.
 */
export function writeRecord(dst: Uint8Array, off: number, vni: number, frame: Uint8Array): number {
  checkFrame(vni, frame);
  const len = VXLAN_HEADER_LEN + frame.length;
  const end = off + RECORD_LENGTH_LEN + len;
  if (off < 0 || end > dst.length) throw new RangeError(`no room for a ${len + RECORD_LENGTH_LEN}-byte record at offset ${off}`);
  dst[off] = len >>> 8;
  dst[off + 1] = len & 0xff;
  writeVxlanHeader(dst, off + RECORD_LENGTH_LEN, vni);
  dst.set(frame, off + RECORD_LENGTH_LEN + VXLAN_HEADER_LEN);
  return end;
}

export function encodeRecord(vni: number, frame: Uint8Array): Buffer {
  checkFrame(vni, frame);
  const out = Buffer.allocUnsafe(RECORD_LENGTH_LEN + VXLAN_HEADER_LEN + frame.length);
  writeRecord(out, 0, vni, frame);
  return out;
}

/** Bytes a record for a frame of `frameLen` bytes takes on the stream. */
export const recordSize = (frameLen: number): number => RECORD_LENGTH_LEN + VXLAN_HEADER_LEN + frameLen;

const READ_LENGTH = 0;
const READ_BODY = 1;
const SKIP_BODY = 2;

/**
 * Incremental record decoder for one connection. Frames given to `onRecord` are views into the pushed
 * chunk or into a buffer the decoder never writes again, so they stay valid after the callback as long
 * as nobody modifies the chunk: a whole read can be handed on as one batch of views. State is updated
 * before each callback, so a callback that throws loses the rest of that chunk but not the stream's sync.
 */
export class RecordDecoder {
  #state = READ_LENGTH;
  #lenHi = -1;
  #need = 0;
  #have = 0;
  #poisoned = false;
  #partial = Buffer.allocUnsafe(MAX_RECORD);

  constructor(
    private readonly onRecord: (vni: number, frame: Buffer) => void,
    private readonly onDrop: (reason: StreamDrop) => void,
  ) {}

  /** True after an unrecoverable error; every later push returns that error again. */
  get poisoned(): boolean {
    return this.#poisoned;
  }

  /** Bytes held from an incomplete record (for diagnostics and tests). */
  get buffered(): number {
    return (this.#lenHi >= 0 ? 1 : 0) + (this.#state === READ_BODY ? this.#have : 0);
  }

  push(chunk: Buffer): StreamError | null {
    if (this.#poisoned) return 'record-oversize';
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.#state === READ_LENGTH) {
        let len: number;
        if (this.#lenHi < 0) {
          if (n - pos < 2) {
            this.#lenHi = chunk[pos] ?? 0;
            return null;
          }
          len = ((chunk[pos] ?? 0) << 8) | (chunk[pos + 1] ?? 0);
          pos += 2;
        } else {
          len = (this.#lenHi << 8) | (chunk[pos] ?? 0);
          this.#lenHi = -1;
          pos += 1;
        }
        if (len > MAX_RECORD) {
          this.#poisoned = true;
          return 'record-oversize';
        }
        this.#need = len;
        this.#have = 0;
        if (len < MIN_RECORD) {
          this.#state = SKIP_BODY;
          this.onDrop('record-undersize');
        } else {
          this.#state = READ_BODY;
        }
      } else if (this.#state === SKIP_BODY) {
        const take = Math.min(this.#need - this.#have, n - pos);
        this.#have += take;
        pos += take;
        if (this.#have === this.#need) this.#state = READ_LENGTH;
      } else if (this.#have === 0 && n - pos >= this.#need) {
        // Whole record inside this chunk: hand out a view, no copy.
        const at = pos;
        pos += this.#need;
        this.#state = READ_LENGTH;
        this.#deliver(chunk, at, this.#need);
      } else {
        const take = Math.min(this.#need - this.#have, n - pos);
        chunk.copy(this.#partial, this.#have, pos, pos + take);
        this.#have += take;
        pos += take;
        if (this.#have === this.#need) {
          this.#state = READ_LENGTH;
          const done = this.#partial;
          // A record that straddled reads gets a buffer of its own: its view outlives the next partial one.
          this.#partial = Buffer.allocUnsafe(MAX_RECORD);
          this.#deliver(done, 0, this.#need);
        }
      }
    }
    if (this.#state === SKIP_BODY && this.#have === this.#need) this.#state = READ_LENGTH;
    return null;
  }

  /** The record is buf[at, at + len); one view (the frame) is the only allocation per record. */
  #deliver(buf: Buffer, at: number, len: number): void {
    if (((buf[at] ?? 0) & VXLAN_FLAG_I) === 0) {
      this.onDrop('record-no-i-flag');
      return;
    }
    const vni = ((buf[at + 4] ?? 0) << 16) | ((buf[at + 5] ?? 0) << 8) | (buf[at + 6] ?? 0);
    this.onRecord(vni, buf.subarray(at + VXLAN_HEADER_LEN, at + len));
  }
}
