// SPDX-License-Identifier: UNLICENSED
// A plain-data snapshot of the device identity lifecycle for the agent's status socket and logs.

export type IdentityState =
  'starting' | 'waiting-for-time' | 'enrolling' | 'waiting-for-claim' | 'refused' | 'ready' | 'renewing' | 'error';

export interface IdentityStatus {
  state: IdentityState;
  /** Why the state is what it is, in words an operator can act on. */
  reason?: string;
  serial?: string;
  /** SHA-256 of the operational certificate (hex). */
  fingerprint?: string;
  notAfter?: string;
  renewAt?: string;
  nextAttemptAt?: string;
  /** Enrollment or renewal attempts since the last success. */
  attempts: number;
  /** When the state last changed (ISO 8601, from the injected clock). */
  since: string;
}

export class IdentityStatusTracker {
  private current: IdentityStatus;
  private readonly listeners = new Set<(s: IdentityStatus) => void>();

  constructor(private readonly now: () => number) {
    this.current = { state: 'starting', attempts: 0, since: new Date(now()).toISOString() };
  }

  /** Merges fields; a state change resets `since`, and fields set to undefined are dropped. */
  update(patch: { [K in keyof IdentityStatus]?: IdentityStatus[K] | undefined }): void {
    const next = { ...this.current, ...patch } as IdentityStatus;
    if (patch.state && patch.state !== this.current.state) next.since = new Date(this.now()).toISOString();
    for (const k of Object.keys(next) as (keyof IdentityStatus)[]) if (next[k] === undefined) delete next[k];
    this.current = next;
    for (const l of this.listeners) l(this.snapshot());
  }

  snapshot(): IdentityStatus {
    return { ...this.current };
  }

  /** Returns an unsubscribe function. */
  onChange(listener: (s: IdentityStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
