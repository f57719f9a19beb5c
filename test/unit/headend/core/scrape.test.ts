// SPDX-License-Identifier: UNLICENSED
// A metrics scrape of thousands of segments is served in slices: the loop runs other work between them,
// the text is exactly the one rendered at once, each family's HELP and TYPE appear once, tenants are
// summed and zero series left out; two scrapes in flight do not mix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeadendCore } from '../../../../src/headend/core/headend.js';
import { parseHeadendConfig } from '../../../../src/headend/core/config.js';
import { parseRegistry } from '../../../../src/shared/registry/registry.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { systemScheduler } from '../../../../src/shared/system-time.js';

const TENANTS = 1_500;
const PER_TENANT = 2;

function core(): HeadendCore {
  const tenants: Record<string, unknown> = {};
  for (let t = 0; t < TENANTS; t++) {
    const segments: Record<string, unknown> = {};
    for (let s = 0; s < PER_TENANT; s++) segments[`seg${s}`] = { vni: 1_000 + t * PER_TENANT + s };
    tenants[`t${t}`] = { segments };
  }
  const config = parseHeadendConfig(
    { tls: { cert: 'x', key: 'x', deviceCa: 'x' }, registry: 'r.json', auditLog: 'a.jsonl', listen: { port: 0 } },
    '/tmp',
  );
  // Each reading of the clock is a millisecond later: the scrape's time budget runs out every few slices.
  let now = 0;
  const c = new HeadendCore(config, parseRegistry({ version: 1, tenants, devices: {}, denylist: [] }), {
    log: silentLogger,
    audit: () => {},
    clock: { now: () => ++now },
    wallClock: { now: () => Date.parse('2026-12-05T00:00:00Z') },
    scheduler: systemScheduler,
    vtep: { send: () => {} } as never,
  });
  // Traffic on the even tenants only: the odd ones must not appear at all.
  for (const s of c.l2.segmentStats()) {
    if (Number(s.info.name.slice(1).split('/')[0]) % 2 === 1) continue;
    s.stats.vtepIn.frames = 10;
    s.stats.vtepIn.bytes = 1_000;
  }
  return c;
}

async function whileTicking<T>(work: () => Promise<T>): Promise<{ value: T; ticks: number }> {
  let ticks = 0;
  let running = true;
  const tick = (): void => {
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const value = await work();
  running = false;
  return { value, ticks };
}

test('a scrape of 3,000 segments lets the loop run between slices and serves the text rendered at once', async () => {
  const c = core();
  for (const detail of ['tenant', 'segment'] as const) {
    const { value, ticks } = await whileTicking(() => c.scrapeMetrics(detail));
    assert.ok(ticks > 3, `${detail}: the loop ran ${ticks} times during the scrape`);
    assert.equal(value, c.renderMetrics(detail), detail);
    const helps = value.split('\n').filter((l) => l.startsWith('# HELP '));
    assert.equal(new Set(helps).size, helps.length, `${detail}: HELP once per family`);
    const samples = value.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(new Set(samples.map((l) => l.split(' ')[0])).size, samples.length, `${detail}: each series once`);
  }
  const byTenant = c.renderMetrics('tenant');
  assert.match(byTenant, /^connector_headend_frames_total\{direction="vtep-in",tenant="t0"\} 20$/m, 'summed over the tenant');
  assert.match(byTenant, /^connector_headend_bytes_total\{direction="vtep-in",tenant="t1498"\} 2000$/m);
  assert.doesNotMatch(byTenant, /tenant="t1"[,}]/, 'no zero series');
  assert.doesNotMatch(byTenant, /direction="tunnel-in"/, 'no zero direction');
  const bySegment = c.renderMetrics('segment');
  assert.match(bySegment, /^connector_headend_frames_total\{direction="vtep-in",segment="t2\/seg1",vni="1005"\} 10$/m);
  assert.equal(bySegment.match(/^connector_headend_frames_total\{/gm)?.length, (TENANTS / 2) * PER_TENANT);
});

test('two scrapes in flight, one per tenant and one per segment, each get their own view', async () => {
  const c = core();
  const [a, b] = await Promise.all([c.scrapeMetrics('tenant'), c.scrapeMetrics('segment')]);
  assert.equal(a, c.renderMetrics('tenant'));
  assert.equal(b, c.renderMetrics('segment'));
});
