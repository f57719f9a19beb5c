// SPDX-License-Identifier: UNLICENSED
// Preloaded with NODE_OPTIONS="--import <this file>": the first SIGUSR2 starts an event-loop delay
// histogram, the second writes CK_LOOP_DELAY_DIR/ELD.<pid>.json (percentiles in ms). A frame that
// arrives while the loop is busy waits up to one loop turn: this is the daemon's share of loaded RTT.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CK_LOOP_DELAY_DIR;
if (dir) {
  let h = null;
  process.on('SIGUSR2', () => {
    if (!h) {
      h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      return;
    }
    h.disable();
    const ms = (ns) => Math.round(ns / 1e3) / 1e3;
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, `ELD.${process.pid}.json`),
      JSON.stringify({ p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), max: ms(h.max), n: h.count }),
    );
    h = null;
  });
}
