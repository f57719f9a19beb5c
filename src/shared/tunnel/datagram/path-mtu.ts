// SPDX-License-Identifier: UNLICENSED
// One side's path MTU (RFC 8899's datagram PLPMTUD, simplified): where the search starts, which padded
// probes are due, what an answer proves, and the black-hole check. Pure: time and probe ids in, the
// probe sizes to send and the PLPMTU out; the channel seals and sends.
//
// Search: from BASE_PLPMTU, once the path is up, one padded probe per candidate above the PLPMTU, three
// rounds 1 s apart, again every 10 minutes; an answered size raises the PLPMTU (its loss says nothing
// about the path's liveness: the channel never counts probes toward a dark path).
// Black hole (RFC 8899 §4.3): a path can shrink after the search (a new route, a PPPoE fallback). While
// frames flow, one probe at the PLPMTU every 5 s confirms it; two confirmations in a row lost while the
// path itself answers (the channel asks only while its data goes as datagrams, and a dead path turns
// dark within 1 s, before a confirmation is judged) drop the PLPMTU back to the base and search again at
// once. Until the search has found the new size, frames above one datagram leave as HEAD/TAIL pairs, so
// nothing is lost meanwhile.

/** Where every path MTU search starts: IPv6's minimum link MTU, which nearly every IPv4 path carries too. */
export const BASE_PLPMTU = 1280;
/** Outer packet sizes a search tries, largest first: Ethernet, PPPoE, common tunnel and DS-Lite sizes. */
export const PLPMTU_CANDIDATES: readonly number[] = [1500, 1492, 1480, 1472, 1460, 1440, 1420, 1400, 1380, 1360, 1340, 1320, 1300];
const SEARCH_ROUNDS = 3;
const SEARCH_ROUND_MS = 1_000;
const SEARCH_AGAIN_MS = 600_000;
export const CONFIRM_EVERY_MS = 5_000;
/** A confirmation unanswered this long is lost (well past any RTT the channel stays on datagrams with). */
const CONFIRM_WAIT_MS = 2_000;
const CONFIRM_MISSES = 2;

export interface ProbeDue {
  id: number;
  /** Outer packet size (IP and UDP headers included). */
  size: number;
}

export class PathMtu {
  /** The largest outer packet this side's path has carried (and, while frames flow, still carries). */
  plpmtu = BASE_PLPMTU;
  /** Times a confirmed PLPMTU stopped getting through and fell back to the base. */
  blackHoles = 0;
  readonly #max: number;
  /** Search probes in flight: id -> size. */
  readonly #probes = new Map<number, number>();
  #round = 0;
  #nextSearchAt = Number.POSITIVE_INFINITY;
  #confirm: { id: number; size: number; sentAt: number } | null = null;
  #nextConfirmAt = Number.NEGATIVE_INFINITY;
  #misses = 0;

  constructor(maxPlpmtu = 1500) {
    this.#max = maxPlpmtu;
  }

  /** The path came up for the first time: search now. */
  started(now: number): void {
    this.#nextSearchAt = now;
  }

  /**
   * The probes due now while this side's data goes as datagrams; `active`: frames flowed lately (only
   * then is a confirmation worth its bytes). `nextId` hands out PING ids.
   */
  due(now: number, active: boolean, nextId: () => number): ProbeDue[] {
    const out: ProbeDue[] = [];
    if (this.#confirm !== null && now - this.#confirm.sentAt >= CONFIRM_WAIT_MS) {
      const lost = this.#confirm;
      this.#confirm = null;
      if (lost.size === this.plpmtu && ++this.#misses >= CONFIRM_MISSES) this.#fellIntoBlackHole(now);
    }
    if (now >= this.#nextSearchAt) {
      for (const size of PLPMTU_CANDIDATES) {
        if (size <= this.plpmtu || size > this.#max) continue;
        const id = nextId();
        this.#probes.set(id, size);
        out.push({ id, size });
      }
      // Bounded: only the latest rounds' probes can still be answered.
      while (this.#probes.size > SEARCH_ROUNDS * PLPMTU_CANDIDATES.length) this.#probes.delete(this.#probes.keys().next().value as number);
      this.#round = (this.#round + 1) % SEARCH_ROUNDS;
      this.#nextSearchAt = now + (this.#round === 0 ? SEARCH_AGAIN_MS : SEARCH_ROUND_MS);
    } else if (active && this.plpmtu > BASE_PLPMTU && this.#confirm === null && now >= this.#nextConfirmAt) {
      const id = nextId();
      this.#confirm = { id, size: this.plpmtu, sentAt: now };
      this.#nextConfirmAt = now + CONFIRM_EVERY_MS;
      out.push({ id, size: this.plpmtu });
    }
    return out;
  }

  /** An answered PING id: true when it was one of these probes (the path carried a packet that large). */
  answered(id: number): boolean {
    if (this.#confirm?.id === id) {
      this.#confirm = null;
      this.#misses = 0;
      return true;
    }
    const size = this.#probes.get(id);
    if (size === undefined) return false;
    this.#probes.delete(id);
    if (size > this.plpmtu) this.#misses = 0;
    this.plpmtu = Math.max(this.plpmtu, size);
    return true;
  }

  /** The path went dark: a confirmation in flight says nothing about its size. */
  pathDark(): void {
    this.#confirm = null;
    this.#misses = 0;
  }

  clear(): void {
    this.#probes.clear();
    this.#confirm = null;
  }

  #fellIntoBlackHole(now: number): void {
    this.plpmtu = BASE_PLPMTU;
    this.blackHoles++;
    this.#misses = 0;
    this.#probes.clear();
    this.#round = 0;
    this.#nextSearchAt = now;
  }
}
