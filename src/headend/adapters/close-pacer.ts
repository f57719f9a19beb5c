// SPDX-License-Identifier: UNLICENSED
// Sessions whose peers went away, closed a few milliseconds' worth at a time. When a site's router, a
// load balancer or a whole fleet drops thousands of connections at once, the kernel reports them in
// one wake-up and each close costs about 90 us here (TLS teardown, the switch, the audit record, the
// log line): 1,000 of them held every other session's frames for 100-200 ms. Queued here, they are
// closed in slices of at most SLICE_MS with the loop's I/O between slices.

const SLICE_MS = 2;

/** Runs queued work in slices: `defer(fn)` queues, slices run in the check phase, after the loop's I/O. */
export function closePacer(now: () => number = () => performance.now()): { defer(fn: () => void): void; readonly queued: number } {
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
