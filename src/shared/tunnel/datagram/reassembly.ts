// SPDX-License-Identifier: UNLICENSED
// A frame too large for one datagram travels as two: HEAD (its first half) and TAIL (the rest), sealed
// under consecutive counters of one epoch. No fragment header is needed: the pairing is the authenticated
// packet id, so only authentic halves are ever held. Holding is bounded in slots and in time: a lost half
// costs its frame and a few hundred bytes for at most REASSEMBLY_TIMEOUT_MS, never a growing table.
export const KIND_HEAD = 0x01;
export const KIND_TAIL = 0x02;
export const REASSEMBLY_SLOTS = 8;
export const REASSEMBLY_TIMEOUT_MS = 200;
/** The largest frame a pair may rebuild: 1,500 bytes of payload, two VLAN tags, the Ethernet header. */
export const MAX_SPLIT_FRAME = 1522;

interface Half {
  readonly kind: number;
  readonly epoch: number;
  readonly counter: number;
  readonly at: number;
  readonly bytes: Buffer;
}

export type ReassemblyDrop = 'half-evicted' | 'half-timeout' | 'half-length';

export class Reassembly {
  readonly #held: Half[] = [];

  constructor(private readonly drop: (reason: ReassemblyDrop) => void) {}

  /** One authentic half (a view of the datagram); the rebuilt frame once its partner is here, else null. */
  offer(kind: number, epoch: number, counter: number, half: Buffer, now: number): Buffer | null {
    this.#expire(now);
    if (half.length === 0 || half.length > MAX_SPLIT_FRAME) return this.#dropped('half-length');
    const partner = kind === KIND_HEAD ? counter + 1 : counter - 1;
    const i = this.#held.findIndex((h) => h.epoch === epoch && h.counter === partner && h.kind !== kind);
    if (i < 0) {
      if (this.#held.length >= REASSEMBLY_SLOTS) {
        this.#held.shift();
        this.drop('half-evicted');
      }
      // Copied: the view belongs to the datagram's plaintext buffer.
      this.#held.push({ kind, epoch, counter, at: now, bytes: Buffer.from(half) });
      return null;
    }
    const other = this.#held.splice(i, 1)[0] as Half;
    const frame = kind === KIND_HEAD ? Buffer.concat([half, other.bytes]) : Buffer.concat([other.bytes, half]);
    return frame.length < 14 || frame.length > MAX_SPLIT_FRAME ? this.#dropped('half-length') : frame;
  }

  get held(): number {
    return this.#held.length;
  }

  clear(): void {
    this.#held.length = 0;
  }

  #expire(now: number): void {
    while (this.#held.length > 0 && now - (this.#held[0] as Half).at >= REASSEMBLY_TIMEOUT_MS) {
      this.#held.shift();
      this.drop('half-timeout');
    }
  }

  #dropped(reason: ReassemblyDrop): null {
    this.drop(reason);
    return null;
  }
}
