// SPDX-License-Identifier: UNLICENSED
// The event loop's health: its delay (how late a timer fires) over each window, p99 and max, exported
// as metrics and watched by an alarm. Every session shares this loop: control-plane work that stalls it
// (a scrape, a teardown, an audit write) shows here before users see it. perf_hooks samples with a
// native timer, so measuring costs nothing on the loop.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from '../../shared/log.js';

export interface LoopHealth {
  /** The last window's figures, ms. */
  readonly last: () => { p99Ms: number; maxMs: number };
  stop(): void;
}

export function watchLoopHealth(o: {
  windowMs: number;
  /** p99 above this raises the alarm; two windows below it clear it. */
  alarmP99Ms: number;
  log: Logger;
  publish(p99Ms: number, maxMs: number, alarm: boolean): void;
}): LoopHealth {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let last = { p99Ms: 0, maxMs: 0 };
  let alarm = false;
  let calm = 0;
  const timer = setInterval(() => {
    last = { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
    h.reset();
    if (!alarm && last.p99Ms > o.alarmP99Ms) {
      alarm = true;
      calm = 0;
      o.log.warn('alarm raised: event loop delayed', {
        p99Ms: +last.p99Ms.toFixed(1),
        maxMs: +last.maxMs.toFixed(1),
        thresholdMs: o.alarmP99Ms,
      });
    } else if (alarm && last.p99Ms <= o.alarmP99Ms && ++calm >= 2) {
      alarm = false;
      o.log.info('alarm cleared: event loop delay back to normal', { p99Ms: +last.p99Ms.toFixed(1) });
    }
    o.publish(last.p99Ms, last.maxMs, alarm);
  }, o.windowMs);
  timer.unref();
  return {
    last: () => last,
    stop() {
      clearInterval(timer);
      h.disable();
    },
  };
}
