// SPDX-License-Identifier: UNLICENSED
// Login rate limiting: after `maxFailures` failed logins for one operator name or from one address
// within `windowMs`, further attempts for that key are refused for a lockout that doubles with each
// further failure (up to `maxLockoutMs`). A success clears the name's record. Bounded: at most
// `maxKeys` keys are tracked, the oldest forgotten first. Pure: time comes in.

export interface LoginGuardOptions {
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  maxLockoutMs: number;
  maxKeys: number;
}

export const LOGIN_GUARD_DEFAULTS: LoginGuardOptions = Object.freeze({
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockoutMs: 60_000,
  maxLockoutMs: 60 * 60_000,
  maxKeys: 10_000,
});

interface Entry {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

export class LoginGuard {
  readonly #o: LoginGuardOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(o: LoginGuardOptions = LOGIN_GUARD_DEFAULTS) {
    this.#o = o;
  }

  /** Milliseconds the attempt must wait (0: go ahead) for the operator `name` from `address`. */
  retryAfterMs(name: string, address: string, now: number): number {
    let wait = 0;
    for (const key of [`n:${name}`, `a:${address}`]) {
      const e = this.#entries.get(key);
      if (e && e.lockedUntil > now) wait = Math.max(wait, e.lockedUntil - now);
    }
    return wait;
  }

  failed(name: string, address: string, now: number): void {
    for (const key of [`n:${name}`, `a:${address}`]) {
      let e = this.#entries.get(key);
      if (!e || now - e.firstAt > this.#o.windowMs) e = { failures: 0, firstAt: now, lockedUntil: 0 };
      e.failures++;
      if (e.failures >= this.#o.maxFailures) {
        const doublings = e.failures - this.#o.maxFailures;
        e.lockedUntil = now + Math.min(this.#o.maxLockoutMs, this.#o.lockoutMs * 2 ** Math.min(doublings, 20));
      }
      this.#entries.delete(key);
      this.#entries.set(key, e);
    }
    while (this.#entries.size > this.#o.maxKeys) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  succeeded(name: string): void {
    this.#entries.delete(`n:${name}`);
  }
}
