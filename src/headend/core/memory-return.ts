// SPDX-License-Identifier: UNLICENSED
// When the headend hands freed native memory back to the kernel. After a mass disconnect (a site
// outage, a kill -9 of a load balancer, a reconnect storm's first wave) the allocator keeps the freed
// TLS buffers of every closed session; measured here, 2,000 sessions gone left RSS at 2.4x the idle
// baseline for good. A trim costs a walk of the allocator's arenas (off the loop, but it contends for
// their locks), so it runs only once the session count has settled after a real drop.

export interface MemoryReturnPolicy {
  /** A drop smaller than this many sessions is churn, not a teardown. */
  readonly minDrop: number;
  /** ... nor one below this fraction of the peak since the last trim. */
  readonly minFraction: number;
  /** At most one trim per this many ms. */
  readonly minIntervalMs: number;
}

export const MEMORY_RETURN_DEFAULTS: MemoryReturnPolicy = { minDrop: 100, minFraction: 0.1, minIntervalMs: 30_000 };

export class MemoryReturn {
  #peak = 0;
  #previous = -1;
  #lastTrimAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly policy: MemoryReturnPolicy = MEMORY_RETURN_DEFAULTS) {}

  /** Called at a steady interval with the live session count; true when a trim should run now. */
  tick(nowMs: number, sessions: number): boolean {
    this.#peak = Math.max(this.#peak, sessions);
    // Settled: the same count as one interval ago (a teardown still under way frees more).
    const settled = sessions === this.#previous;
    this.#previous = sessions;
    const drop = this.#peak - sessions;
    const { minDrop, minFraction, minIntervalMs } = this.policy;
    if (!settled || drop < minDrop || drop < minFraction * this.#peak || nowMs - this.#lastTrimAt < minIntervalMs) return false;
    this.#peak = sessions;
    this.#lastTrimAt = nowMs;
    return true;
  }
}
