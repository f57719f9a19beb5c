// SPDX-License-Identifier: UNLICENSED
// `npm run bench`: connector-kit's tunnel measured beside OpenVPN-TAP (TCP and UDP), kernel VXLAN and a
// plain bridge, in the same run, alternating, repeated; optionally across WAN profiles (the delay line on
// the underlay) and in slow-core mode. Results: bench/results/<time>.json + a Markdown table. Options:
// docs/performance.md.
// A benchmark, not a test: it asserts nothing, it records what it measured and how.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { nsExec, spawnInNetns, uniquePrefix } from '../../src/lab/adapters/netns.js';
import { ADDR, benchNet, teardown, waitForPing } from './topology.js';
import { limitCpu, removeCpuGroups } from '../../src/lab/adapters/cpu-limit.js';
import { WAN_PROFILES } from '../../src/lab/core/wan.js';
import { procUsage, SCENARIOS, startScenario, threadUsage, toolVersions, type ScenarioName } from './scenarios.js';
import { parseIperfTcp, parseIperfUdp, parsePing, summarise, udpArrivals, type Summary } from './stats.js';
import { renderMarkdown } from './report.js';
import { grown, readDrops, type DropCounters } from './drops.js';
import { slowCores, type SlowCores } from './slow-cores.js';

export interface RunSample {
  scenario: ScenarioName;
  /** WAN profile on the underlay (`none`: a bare veth). */
  wan: string;
  run: number;
  tcp1Mbps: number;
  tcp1Retransmits: number;
  tcp1RetransPer1000: number;
  tcp4Mbps: number;
  tcp4Retransmits: number;
  tcp4RetransPer1000: number;
  /** Per daemon: CPU-seconds (user + system, /proc) over the two bulk TCP tests per GB iperf3 delivered. */
  cpuSPerGB: Record<string, number>;
  /** One TCP flow the other way (iperf3 -R: hb, the datacentre side, sends to ha on the LAN): a restore. */
  tcp1RevMbps: number;
  tcp1RevRetransPer1000: number;
  cpuSPerGBReverse: Record<string, number>;
  /**
   * Per daemon: its event-loop thread's CPU-seconds per GB over the same tests: what one core must do, so
   * one flow's ceiling where every thread has a core of its own (the send threads and the kernel's other
   * work elsewhere; CK_BENCH_SEND_THREADS=1).
   */
  loopSPerGB: Record<string, number>;
  loopSPerGBReverse: Record<string, number>;
  /** Idle pings at 20/s (`--idle-pings N`): sent and lost, and the daemons' drop counters that grew meanwhile. */
  idlePings?: { sent: number; lost: number; p99: number; drops?: DropCounters };
  udpGoodputMbps: number;
  udpLossPercent: number;
  udpJitterMs: number;
  smallFramesPps: number;
  /** The same flood counted where it reaches the far host's UDP layer: what the tunnel delivered. */
  smallFramesAtHostPps: number;
  idleRtt: { p50: number; p99: number; max: number };
  loadedRtt: { p50: number; p99: number; max: number; lossPercent: number };
  procs: Record<string, { cpuS: number; peakRssMb: number }>;
  error?: string;
}

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    'udp-rate': { type: 'string', default: '300M' },
    out: { type: 'string', default: 'bench/results' },
    wan: { type: 'string', default: 'none' },
    'slow-core': { type: 'string' },
    'slow-cores': { type: 'boolean', default: false },
    'idle-pings': { type: 'string', default: '0' },
  },
});
const PROFILES = (opt.wan ?? 'none').split(',').filter(Boolean);
for (const p of PROFILES) {
  if (p !== 'none' && !WAN_PROFILES[p]) throw new Error(`unknown WAN profile ${p}; known: none, ${Object.keys(WAN_PROFILES).join(', ')}`);
}
const SLOW_CORE = opt['slow-core'] === undefined ? undefined : Number(opt['slow-core']);
const IDLE_PINGS = Number(opt['idle-pings']);
/** Summary key of a scenario on a WAN profile. */
const keyOf = (s: string, wan: string): string => (wan === 'none' ? s : `${s}@${wan}`);
const RUNS = Number(opt.runs);
const DUR = Number(opt.duration);
const UDP_RATE = opt['udp-rate'] ?? '300M';
const scenarios = (opt.scenarios ?? '').split(',').filter(Boolean) as ScenarioName[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);

function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Each daemon's event-loop thread CPU-seconds so far (its main thread; `loop` in threadUsage). */
function loopCpu(procs: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(procs).map(([role, pid]) => [role, threadUsage(pid)['loop'] ?? NaN]));
}

async function iperf(net: ReturnType<typeof benchNet>, args: string[]): Promise<string> {
  const server = spawnInNetns(net.ns.hb, 'iperf3', ['-s', '-1', '-p', '5201'], { logFile: '/dev/null' });
  await sleep(300);
  try {
    const r = await nsExec(net.ns.ha, 'iperf3', ['-c', ADDR.hostB, '-p', '5201', '-J', ...args], {
      allowFailure: true,
      timeoutMs: (DUR + 20) * 1000,
    });
    if (!r.stdout.trim()) throw new Error(`iperf3 ${args.join(' ')} printed nothing (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}`);
    return r.stdout;
  } finally {
    try {
      process.kill(server, 'SIGKILL');
    } catch {
      // exited after its one test
    }
  }
}

async function measure(name: ScenarioName, wan: string, run: number, work: string): Promise<RunSample> {
  const net = benchNet(uniquePrefix('ckb'), wan === 'none' ? undefined : WAN_PROFILES[wan]);
  const sample: RunSample = {
    scenario: name,
    wan,
    run,
    tcp1Mbps: NaN,
    tcp1Retransmits: NaN,
    tcp1RetransPer1000: NaN,
    tcp4Mbps: NaN,
    tcp4Retransmits: NaN,
    tcp4RetransPer1000: NaN,
    cpuSPerGB: {},
    loopSPerGB: {},
    loopSPerGBReverse: {},
    tcp1RevMbps: NaN,
    tcp1RevRetransPer1000: NaN,
    cpuSPerGBReverse: {},
    udpGoodputMbps: NaN,
    udpLossPercent: NaN,
    udpJitterMs: NaN,
    smallFramesPps: NaN,
    smallFramesAtHostPps: NaN,
    idleRtt: { p50: NaN, p99: NaN, max: NaN },
    loadedRtt: { p50: NaN, p99: NaN, max: NaN, lossPercent: NaN },
    procs: {},
  };
  const cleanup = (): void => {
    teardown(net);
    if (SLOW_CORE !== undefined) removeCpuGroups(`${net.prefix}-`);
  };
  process.once('exit', cleanup);
  let cores: SlowCores | null = null;
  try {
    const running = await startScenario(name, net, join(work, `${keyOf(name, wan)}-${run}`));
    // Slow-core mode: each tunnel daemon confined to a fraction of one core (docs/performance.md); with
    // --slow-cores the connector agent's threads that carry frames get one each (slow-cores.ts).
    cores =
      SLOW_CORE !== undefined && opt['slow-cores'] === true && running.procs['agent'] !== undefined
        ? slowCores(net.prefix, running.procs, SLOW_CORE)
        : null;
    if (SLOW_CORE !== undefined && cores === null)
      for (const [role, pid] of Object.entries(running.procs)) limitCpu(`${net.prefix}-${role}`, SLOW_CORE).add(pid);
    if (!(await waitForPing(net.ns.ha, ADDR.hostB, 30_000))) throw new Error('no connectivity between the hosts');
    await nsExec(net.ns.ha, 'ping', ['-c', '20', '-i', '0.05', ADDR.hostB], { allowFailure: true }); // warm caches
    // Two seconds of bulk traffic first, in every scenario: a daemon that has carried traffic has its
    // hot path compiled; idle RTT is measured on that steady state, not on a just-started process.
    await iperf(net, ['-t', '2']);
    await sleep(1000);
    const idle = parsePing((await nsExec(net.ns.ha, 'ping', ['-c', '200', '-i', '0.01', ADDR.hostB], { allowFailure: true })).stdout);
    sample.idleRtt = { p50: idle.p50, p99: idle.p99, max: idle.max };
    if (IDLE_PINGS > 0) {
      const before = running.drops ? await readDrops(running.drops) : null;
      const r = parsePing(
        (
          await nsExec(net.ns.ha, 'ping', ['-c', String(IDLE_PINGS), '-i', '0.05', '-W', '1', ADDR.hostB], {
            allowFailure: true,
            timeoutMs: IDLE_PINGS * 60 + 10_000,
          })
        ).stdout,
      );
      sample.idlePings = { sent: IDLE_PINGS, lost: IDLE_PINGS - r.received, p99: r.p99 };
      if (before && running.drops) {
        const drops = grown(before, await readDrops(running.drops));
        sample.idlePings.drops = drops;
        if (sample.idlePings.lost > 0)
          progress(`  idle pings: ${sample.idlePings.lost} lost; drop counters that grew meanwhile: ${JSON.stringify(drops)}`);
      }
    }
    const cpuBefore = Object.fromEntries(Object.entries(running.procs).map(([role, pid]) => [role, procUsage(pid)?.cpuS ?? NaN]));
    const loopBefore = loopCpu(running.procs);
    const loadedPing = nsExec(net.ns.ha, 'ping', ['-c', String(Math.max(50, (DUR - 3) * 50)), '-i', '0.02', ADDR.hostB], {
      allowFailure: true,
    });
    const tcp1 = parseIperfTcp(await iperf(net, ['-t', String(DUR)]));
    const loaded = parsePing((await loadedPing).stdout);
    sample.tcp1Mbps = tcp1.mbps;
    sample.tcp1Retransmits = tcp1.retransmits;
    sample.tcp1RetransPer1000 = tcp1.retransPer1000;
    sample.loadedRtt = {
      p50: loaded.p50,
      p99: loaded.p99,
      max: loaded.max,
      lossPercent: loaded.sent ? (100 * (loaded.sent - loaded.received)) / loaded.sent : NaN,
    };
    const tcp4 = parseIperfTcp(await iperf(net, ['-t', String(DUR), '-P', '4']));
    sample.tcp4Mbps = tcp4.mbps;
    sample.tcp4Retransmits = tcp4.retransmits;
    sample.tcp4RetransPer1000 = tcp4.retransPer1000;
    const gb = (tcp1.bytes + tcp4.bytes) / 1e9;
    for (const [role, pid] of Object.entries(running.procs))
      sample.cpuSPerGB[role] = ((procUsage(pid)?.cpuS ?? NaN) - (cpuBefore[role] ?? NaN)) / gb;
    const loopAfter = loopCpu(running.procs);
    for (const role of Object.keys(loopAfter)) sample.loopSPerGB[role] = ((loopAfter[role] ?? NaN) - (loopBefore[role] ?? NaN)) / gb;
    const revBefore = Object.fromEntries(Object.entries(running.procs).map(([role, pid]) => [role, procUsage(pid)?.cpuS ?? NaN]));
    const revLoopBefore = loopCpu(running.procs);
    const rev = parseIperfTcp(await iperf(net, ['-t', String(DUR), '-R']));
    sample.tcp1RevMbps = rev.mbps;
    sample.tcp1RevRetransPer1000 = rev.retransPer1000;
    for (const [role, pid] of Object.entries(running.procs))
      sample.cpuSPerGBReverse[role] = ((procUsage(pid)?.cpuS ?? NaN) - (revBefore[role] ?? NaN)) / (rev.bytes / 1e9);
    const revLoopAfter = loopCpu(running.procs);
    for (const role of Object.keys(revLoopAfter))
      sample.loopSPerGBReverse[role] = ((revLoopAfter[role] ?? NaN) - (revLoopBefore[role] ?? NaN)) / (rev.bytes / 1e9);
    const udp = parseIperfUdp(await iperf(net, ['-u', '-b', UDP_RATE, '-l', '1200', '-t', String(DUR)]));
    sample.udpGoodputMbps = udp.goodputMbps;
    sample.udpLossPercent = udp.lossPercent;
    sample.udpJitterMs = udp.jitterMs;
    // 18-byte UDP payloads make 60-byte frames, 64 bytes on a wire with its FCS.
    const arrivals = async (): Promise<number> => udpArrivals((await nsExec(net.ns.hb, 'cat', ['/proc/net/snmp'])).stdout);
    const arrived = await arrivals();
    const small = parseIperfUdp(await iperf(net, ['-u', '-b', '0', '-l', '18', '-t', String(Math.min(DUR, 5))]));
    sample.smallFramesPps = small.deliveredPps;
    sample.smallFramesAtHostPps = ((await arrivals()) - arrived) / small.seconds;
    for (const [role, pid] of Object.entries(running.procs)) {
      const u = procUsage(pid);
      if (u) sample.procs[role] = u;
    }
  } catch (e) {
    sample.error = e instanceof Error ? e.message : String(e);
    progress(`${name} run ${run}: ${sample.error}`);
  } finally {
    cores?.stop();
    cleanup();
    process.removeListener('exit', cleanup);
  }
  return sample;
}

export type Aggregate = Record<string, Record<string, Summary>>;

function aggregate(samples: readonly RunSample[]): Aggregate {
  const out: Aggregate = {};
  for (const wan of PROFILES)
    for (const s of scenarios) {
      const mine = samples.filter((x) => x.scenario === s && x.wan === wan && !x.error);
      out[keyOf(s, wan)] = aggregateOne(mine);
    }
  return out;
}

function aggregateOne(mine: readonly RunSample[]): Record<string, Summary> {
  const pick = (f: (x: RunSample) => number) => summarise(mine.map(f));
  const row: Record<string, Summary> = {
    tcp1Mbps: pick((x) => x.tcp1Mbps),
    tcp4Mbps: pick((x) => x.tcp4Mbps),
    tcp1RetransPer1000: pick((x) => x.tcp1RetransPer1000),
    tcp4RetransPer1000: pick((x) => x.tcp4RetransPer1000),
    tcp1Retransmits: pick((x) => x.tcp1Retransmits),
    tcp1RevMbps: pick((x) => x.tcp1RevMbps),
    tcp1RevRetransPer1000: pick((x) => x.tcp1RevRetransPer1000),
    idlePingsLost: pick((x) => x.idlePings?.lost ?? NaN),
    udpGoodputMbps: pick((x) => x.udpGoodputMbps),
    udpLossPercent: pick((x) => x.udpLossPercent),
    smallFramesPps: pick((x) => x.smallFramesPps),
    smallFramesAtHostPps: pick((x) => x.smallFramesAtHostPps),
    idleRttP50Ms: pick((x) => x.idleRtt.p50),
    idleRttP99Ms: pick((x) => x.idleRtt.p99),
    loadedRttP50Ms: pick((x) => x.loadedRtt.p50),
    loadedRttP99Ms: pick((x) => x.loadedRtt.p99),
    loadedRttMaxMs: pick((x) => x.loadedRtt.max),
    loadedPingLossPercent: pick((x) => x.loadedRtt.lossPercent),
  };
  const roles = new Set(mine.flatMap((x) => Object.keys(x.procs)));
  for (const r of roles) {
    row[`${r}PeakRssMb`] = pick((x) => x.procs[r]?.peakRssMb ?? NaN);
    row[`${r}CpuS`] = pick((x) => x.procs[r]?.cpuS ?? NaN);
    row[`${r}CpuSPerGB`] = pick((x) => x.cpuSPerGB[r] ?? NaN);
    row[`${r}CpuSPerGBReverse`] = pick((x) => x.cpuSPerGBReverse[r] ?? NaN);
    row[`${r}LoopSPerGB`] = pick((x) => x.loopSPerGB[r] ?? NaN);
    row[`${r}LoopSPerGBReverse`] = pick((x) => x.loopSPerGBReverse[r] ?? NaN);
  }
  return row;
}

if (process.getuid?.() !== 0) {
  process.stderr.write('bench: needs root (network namespaces); run as root\n');
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'ck-bench-'));
const samples: RunSample[] = [];
progress(
  `${RUNS} runs x ${scenarios.join(', ')} on WAN ${PROFILES.join(', ')}${SLOW_CORE ? `, slow core ${SLOW_CORE}` : ''}; ${DUR}s per iperf3 test; work dir ${work}`,
);
for (let run = 1; run <= RUNS; run++) {
  // Alternate the order so drift on this shared machine does not favour one scenario.
  const order = (run % 2 ? scenarios : [...scenarios].reverse()).flatMap((s) => PROFILES.map((w) => [s, w] as const));
  for (const [s, w] of order) {
    progress(`run ${run}/${RUNS}: ${keyOf(s, w)}`);
    const sample = await measure(s, w, run, work);
    samples.push(sample);
    if (!sample.error) {
      progress(
        `  tcp1 ${sample.tcp1Mbps.toFixed(0)} Mbit/s, loaded RTT p99 ${sample.loadedRtt.p99.toFixed(2)} ms, idle p50 ${sample.idleRtt.p50.toFixed(3)} ms`,
      );
    }
  }
}
const result = {
  time: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
  tools: await toolVersions(),
  settings: {
    runs: RUNS,
    durationS: DUR,
    udpRate: UDP_RATE,
    scenarios: PROFILES.flatMap((w) => scenarios.map((s) => keyOf(s, w))),
    wan: Object.fromEntries(PROFILES.map((w) => [w, WAN_PROFILES[w] ?? null])),
    slowCore: SLOW_CORE ?? null,
    slowCores: SLOW_CORE !== undefined && opt['slow-cores'] === true,
    idlePings: IDLE_PINGS,
  },
  samples,
  summary: aggregate(samples),
};
mkdirSync(opt.out ?? 'bench/results', { recursive: true });
const stamp = result.time.replace(/[:.]/g, '-');
const jsonPath = join(opt.out ?? 'bench/results', `tunnel-${stamp}.json`);
const md = renderMarkdown(result);
writeFileSync(jsonPath, JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(opt.out ?? 'bench/results', 'latest.md'), md);
process.stdout.write(md + `\nJSON: ${jsonPath}\n`);
if (samples.some((x) => x.error)) progress(`some runs failed; logs kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
