// SPDX-License-Identifier: UNLICENSED
// Round-trip time and jitter of every session as the headend measures them (operators read them in
// GET /sessions and the console): every session gets a ping once per 5 s, a 250th of them every 20 ms, so
// the fleet's pings never come in a burst that holds the loop (a fifth of them each second was 1,000 TLS
// writes in one turn at 5,000 sessions: 70-100 ms that every session's frames waited), and the agent's
// pong gives the RTT (any agent answers pings, old ones too). Sessions are dealt into the 250 slices as
// they come, so a tick touches its own slice, not the whole table. Jitter is RFC 3550's estimator over
// successive RTTs: J += (|D| - J) / 16. Pure: the sessions and the time come in.
import type { TunnelSession } from '../../shared/tunnel/session.js';

export const RTT_SLICES = 250;
export const RTT_SLICE_MS = 20;

interface Probed {
  readonly identity: { readonly id: string };
  readonly tunnel: TunnelSession;
}

export class RttProbe {
  #turn = 0;
  #added = 0;
  readonly #seen = new Map<string, { rtt: number; jitter: number; samples: number }>();
  // Each session sits in one of the slices, dealt in turn: a tick touches its own slice only, not the fleet.
  readonly #slices = Array.from({ length: RTT_SLICES }, () => new Map<string, Probed>());
  readonly #sliceOf = new Map<string, number>();

  /** A session to probe from now on, until forget(). */
  add(s: Probed): void {
    const k = this.#added++ % RTT_SLICES;
    this.#slices[k]?.set(s.identity.id, s);
    this.#sliceOf.set(s.identity.id, k);
  }

  tick(now: number): void {
    const slice = this.#slices[this.#turn++ % RTT_SLICES];
    if (slice === undefined) return;
    for (const s of slice.values()) {
      if (s.tunnel.state !== 'up') continue;
      // The RTT the previous probe of this session measured: one sample per probe.
      if (s.tunnel.rttMs !== null) this.#note(s.identity.id, s.tunnel.rttMs);
      s.tunnel.ping(now);
    }
  }

  /** The session's jitter, ms; null until two RTTs were measured. */
  jitterOf(id: string): number | null {
    const e = this.#seen.get(id);
    return e && e.samples >= 2 ? Math.round(e.jitter * 100) / 100 : null;
  }

  forget(id: string): void {
    const k = this.#sliceOf.get(id);
    if (k !== undefined) this.#slices[k]?.delete(id);
    this.#sliceOf.delete(id);
    this.#seen.delete(id);
  }

  #note(id: string, rtt: number): void {
    const e = this.#seen.get(id);
    if (!e) this.#seen.set(id, { rtt, jitter: 0, samples: 1 });
    else {
      e.jitter += (Math.abs(rtt - e.rtt) - e.jitter) / 16;
      e.rtt = rtt;
      e.samples++;
    }
  }
}
