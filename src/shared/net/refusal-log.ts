// SPDX-License-Identifier: UNLICENSED
// Logging of refusals at a bounded rate: under attack a service refuses thousands of connections a
// second, and one line each would fill the disk and hide everything else. Per kind, the first `burst`
// refusals of a window are logged; the rest are counted and summarised in one line when the next window
// opens. Pure: time comes in, and the caller's log function is called.

export class RefusalLog {
  readonly #windowMs: number;
  readonly #burst: number;
  readonly #kinds = new Map<string, { windowStart: number; logged: number; suppressed: number }>();

  constructor(windowMs = 10_000, burst = 5) {
    this.#windowMs = windowMs;
    this.#burst = burst;
  }

  /** Calls `emit` for this refusal if the kind's budget allows, and a summary of what the last window suppressed. */
  note(kind: string, now: number, emit: (suppressedBefore: number) => void): void {
    let k = this.#kinds.get(kind);
    if (!k || now - k.windowStart >= this.#windowMs) {
      const suppressed = k?.suppressed ?? 0;
      k = { windowStart: now, logged: 0, suppressed: 0 };
      this.#kinds.set(kind, k);
      k.logged++;
      emit(suppressed);
      return;
    }
    if (k.logged < this.#burst) {
      k.logged++;
      emit(0);
    } else k.suppressed++;
  }
}
