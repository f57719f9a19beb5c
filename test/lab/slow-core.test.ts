// SPDX-License-Identifier: UNLICENSED
// The correctness twin of the data-path benchmarks: on a slow core an idle tunnel loses nothing. The
// headend and the agent each run confined to an eighth of a core (cgroup CPU bandwidth, 10 ms period:
// about a Cortex-A55's per-packet speed, and event-loop turns that come up to ~9 ms late), and 1,000
// pings at 20/s cross the tunnel with none lost. A fixed queue-age drop (the agent's old 2 ms budget)
// loses pings here; CoDel (RFC 8289) does not, because a late turn is not a standing queue.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { limitCpu, removeCpuGroups } from '../../src/lab/adapters/cpu-limit.js';
import { SITE } from '../../src/lab/core/topology.js';
import { labSkipReason, openLab, type LabHandle } from './lab-fixture.js';

const FRACTION = 0.125;
const PINGS = 1_000;

function slowCoreSkip(): string | undefined {
  const lab = labSkipReason({ headend: true, agents: true });
  if (lab) return lab;
  try {
    limitCpu('ck-slow-core-probe', FRACTION);
    removeCpuGroups('ck-slow-core-probe');
  } catch (e) {
    return `slow-core mode unavailable: ${(e as Error).message}`;
  }
  return undefined;
}

describe('slow-core mode (agent and headend at 1/8 of a core)', { skip: slowCoreSkip() }, () => {
  let lab: LabHandle;
  before(async () => {
    lab = await openLab(undefined, { headend: true, agents: true, slowCore: FRACTION });
    // The agent starts (from sources, about 3 s of CPU), enrolls and connects at an eighth of a core.
    await lab.waitPing('lan-host', SITE.vm.ip, 120_000);
  });
  after(() => lab?.down());

  test(`${PINGS} pings at 20/s through an idle tunnel: 0 lost`, { timeout: 240_000 }, async (t) => {
    const prefix = lab.state().prefix;
    const agentGroup = limitCpu(`${prefix}-agent-a`, FRACTION);
    const throttledBefore = agentGroup.throttled().throttledPeriods;
    const r = await lab.ping('lan-host', SITE.vm.ip, { count: PINGS, intervalS: 0.05, timeoutS: 1 });
    const sorted = [...r.rttMs].sort((a, b) => a - b);
    const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    const status = await lab.agentStatus('a');
    const tunnel = status['tunnel'] as { counters: Record<string, number>; aqm: Record<string, unknown> };
    const throttled = agentGroup.throttled().throttledPeriods - throttledBefore;
    t.diagnostic(
      `received ${r.received}/${r.sent}; RTT p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${q(1).toFixed(2)} ms; ` +
        `agent throttled in ${throttled} periods; queue drops aqm ${tunnel.counters['queueAqmDrops']}, overflow ${tunnel.counters['queueOverflowDrops']}`,
    );
    assert.ok(throttled > 0, 'the agent really ran on a slow core (the kernel throttled it)');
    assert.equal(r.received, PINGS, `lost ${PINGS - r.received} of ${PINGS} pings; errors: ${r.errors.slice(0, 3).join('; ')}`);
    assert.equal(tunnel.counters['queueAqmDrops'], 0, 'an idle tunnel never drops by AQM');
  });
});
