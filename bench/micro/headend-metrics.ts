// SPDX-License-Identifier: UNLICENSED
// How long one metrics scrape holds the headend's event loop with N segments (issue 19: 5,000 segments
// took 0.25-0.5 s and 4.5 MB per scrape): the default per-tenant view and the per-segment detail.
// Every segment has carried traffic (non-zero counters), the worst case. JSON on stdout, a table on stderr.
import { HeadendCore } from '../../src/headend/core/headend.js';
import { parseHeadendConfig } from '../../src/headend/core/config.js';
import { parseRegistry } from '../../src/shared/registry/registry.js';
import { silentLogger } from '../../src/shared/log.js';
import { monotonicClock, systemScheduler } from '../../src/shared/system-time.js';

const N = Number(process.env['SEGMENTS'] ?? 5_000);
const TENANTS = 500;
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
const time = (detail: 'tenant' | 'segment'): { ms: number; bytes: number } => {
  let best = Infinity;
  let bytes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    bytes = core.renderMetrics(detail).length;
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: +best.toFixed(1), bytes };
};
const result = { segments: N, tenants: TENANTS, perTenant: time('tenant'), perSegment: time('segment') };
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
process.stderr.write(
  `| view (${N} segments, ${TENANTS} tenants) | loop held | body |\n|---|---|---|\n| per tenant (default) | ${result.perTenant.ms} ms | ${result.perTenant.bytes} B |\n| per segment (?detail=segment) | ${result.perSegment.ms} ms | ${result.perSegment.bytes} B |\n`,
);
