// SPDX-License-Identifier: UNLICENSED
// How long one metrics scrape holds the headend's event loop with N segments (issue 19: 5,000 segments
// took 0.25-0.5 s and 4.5 MB per scrape): the default per-tenant view and the per-segment detail.
// Every segment has carried traffic (non-zero counters), the worst case. Also the scrape as served, spread
// over turns of the loop: the longest stretch it held the loop. JSON on stdout, a table on stderr.
import { HeadendCore } from '../../src/headend/core/headend.js';
import { parseHeadendConfig } from '../../src/headend/core/config.js';
import { parseRegistry } from '../../src/shared/registry/registry.js';
import { silentLogger } from '../../src/shared/log.js';
import { monotonicClock, systemScheduler } from '../../src/shared/system-time.js';

const N = Number(process.env['SEGMENTS'] ?? 5_000);
const TENANTS = Number(process.env['TENANTS'] ?? 500);
const tenants: Record<string, unknown> = {};
for (let t = 0; t < TENANTS; t++) {
  const segments: Record<string, unknown> = {};
  for (let s = 0; s < N / TENANTS; s++) segments[`seg${s}`] = { vni: 1_000 + t * (N / TENANTS) + s, vteps: ['192.0.2.1'] };
  tenants[`tenant-${t}`] = { segments };
}
const registry = parseRegistry({ version: 1, tenants, devices: {}, denylist: [] });
const config = parseHeadendConfig(
  { tls: { cert: 'x', key: 'x', deviceCa: 'x' }, registry: 'r.json', auditLog: 'a.jsonl', listen: { port: 0 } },
  '/tmp',
);
const core = new HeadendCore(config, registry, {
  log: silentLogger,
  audit: () => {},
  clock: monotonicClock,
  wallClock: { now: () => Date.now() },
  scheduler: systemScheduler,
  vtep: { send: () => {} } as never,
});
// Traffic on every segment: each VTEP frame counts vtep-in.
for (const s of core.l2.segmentStats()) {
  s.stats.vtepIn.frames = 10;
  s.stats.vtepIn.bytes = 1_000;
  s.stats.tunnelOut.frames = 10;
  s.stats.tunnelOut.bytes = 1_000;
}
/** The whole render at once (what a scrape held before it was sliced), best of 5. */
const whole = (detail: 'tenant' | 'segment'): { ms: number; bytes: number } => {
  let best = Infinity;
  let bytes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    bytes = core.renderMetrics(detail).length;
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: +best.toFixed(1), bytes };
};
/** The scrape as the endpoint serves it: the longest stretch the loop was held, worst of 5, and the wall time. */
const sliced = async (detail: 'tenant' | 'segment'): Promise<{ heldMs: number; wallMs: number }> => {
  let held = 0;
  let wall = 0;
  for (let i = 0; i < 5; i++) {
    let last = performance.now();
    let running = true;
    const tick = (): void => {
      const t = performance.now();
      held = Math.max(held, t - last);
      last = t;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const t0 = performance.now();
    await core.scrapeMetrics(detail);
    wall = Math.max(wall, performance.now() - t0);
    running = false;
    await new Promise((r) => setImmediate(r));
  }
  return { heldMs: +held.toFixed(1), wallMs: +wall.toFixed(1) };
};
const result = {
  segments: N,
  tenants: TENANTS,
  perTenant: { ...whole('tenant'), ...(await sliced('tenant')) },
  perSegment: { ...whole('segment'), ...(await sliced('segment')) },
};
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
const row = (name: string, r: typeof result.perTenant): string =>
  `| ${name} | ${r.ms} ms | ${r.heldMs} ms | ${r.wallMs} ms | ${r.bytes} B |`;
process.stderr.write(
  [
    `| view (${N} segments, ${TENANTS} tenants) | whole render | scrape: loop held at most | scrape: wall | body |`,
    '|---|---|---|---|---|',
    row('per tenant (default)', result.perTenant),
    row('per segment (?detail=segment)', result.perSegment),
  ].join('\n') + '\n',
);
