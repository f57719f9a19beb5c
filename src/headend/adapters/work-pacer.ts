// SPDX-License-Identifier: UNLICENSED
// The headend's per-session control work that arrives in crowds, run a few milliseconds' worth at a
// time: closes and admissions. When a site's router, a load balancer or a whole fleet drops thousands
// of connections at once, the kernel reports them in one wake-up and each close costs about 90 us here
// (TLS teardown, the switch, the audit record, the log line): 1,000 of them held every other session's
// frames for 100-200 ms. In a reconnect storm the clients' last handshake messages arrive in bunches
// (a fleet's loop answers many at once), and admitting a session (certificate, registry, session,
// audit, log) is milliseconds: 230 in one turn held the loop for 830 ms. Queued here, the work runs in
// slices of at most SLICE_MS with the loop's I/O between slices, in the order it arrived.

const SLICE_MS = 2;

/** Runs queued work in slices: `defer(fn)` queues, slices run in the check phase, after the loop's I/O. */
export function workPacer(now: () => number = () => performance.now()): { defer(fn: () => void): void; readonly queued: number } {
  let queue: (() => void)[] = [];
  let at = 0;
  let scheduled = false;
  const drain = (): void => {
    scheduled = false;
    const until = now() + SLICE_MS;
    while (at < queue.length) {
      const fn = queue[at++] as () => void;
      fn();
      if (now() >= until) break;
    }
    if (at < queue.length) {
      scheduled = true;
      setImmediate(drain);
      return;
    }
    queue = [];
    at = 0;
  };
  return {
    defer(fn) {
      queue.push(fn);
      if (scheduled) return;
      scheduled = true;
      setImmediate(drain);
    },
    get queued() {
      return queue.length - at;
    },
  };
}
