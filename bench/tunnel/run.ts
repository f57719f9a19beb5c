// SPDX-License-Identifier: UNLICENSED
// `npm run bench`: connector-kit's tunnel measured beside OpenVPN-TAP-TCP, kernel VXLAN and a plain
// bridge, in the same run, alternating, repeated. Results: bench/results/<time>.json + a Markdown table.
// A benchmark, not a test: it asserts nothing, it records what it measured and how.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { nsExec, spawnInNetns, uniquePrefix } from '../../src/lab/adapters/netns.js';
import { ADDR, benchNet, teardown, waitForPing } from './topology.js';
import { procUsage, SCENARIOS, startScenario, toolVersions, type ScenarioName } from './scenarios.js';
import { parseIperfTcp, parseIperfUdp, parsePing, summarise, type Summary } from './stats.js';
import { renderMarkdown } from './report.js';

export interface RunSample {
  scenario: ScenarioName;
  run: number;
  tcp1Mbps: number;
  tcp1Retransmits: number;
  tcp4Mbps: number;
  udpGoodputMbps: number;
  udpLossPercent: number;
  udpJitterMs: number;
  smallFramesPps: number;
  idleRtt: { p50: number; p99: number; max: number };
  loadedRtt: { p50: number; p99: number; max: number };
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
  },
});
const RUNS = Number(opt.runs);
const DUR = Number(opt.duration);
const UDP_RATE = opt['udp-rate'] ?? '300M';
const scenarios = (opt.scenarios ?? '').split(',').filter(Boolean) as ScenarioName[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);

function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
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

async function measure(name: ScenarioName, run: number, work: string): Promise<RunSample> {
  const net = benchNet(uniquePrefix('ckb'));
  const sample: RunSample = {
    scenario: name,
    run,
    tcp1Mbps: NaN,
    tcp1Retransmits: NaN,
    tcp4Mbps: NaN,
    udpGoodputMbps: NaN,
    udpLossPercent: NaN,
    udpJitterMs: NaN,
    smallFramesPps: NaN,
    idleRtt: { p50: NaN, p99: NaN, max: NaN },
    loadedRtt: { p50: NaN, p99: NaN, max: NaN },
    procs: {},
  };
  const cleanup = (): void => teardown(net);
  process.once('exit', cleanup);
  try {
    const running = await startScenario(name, net, join(work, `${name}-${run}`));
    if (!(await waitForPing(net.ns.ha, ADDR.hostB, 30_000))) throw new Error('no connectivity between the hosts');
    await nsExec(net.ns.ha, 'ping', ['-c', '20', '-i', '0.05', ADDR.hostB], { allowFailure: true }); // warm caches
    // Two seconds of bulk traffic first, in every scenario: a daemon that has carried traffic has its
    // hot path compiled; idle RTT is measured on that steady state, not on a just-started process.
    await iperf(net, ['-t', '2']);
    await sleep(1000);
    const idle = parsePing((await nsExec(net.ns.ha, 'ping', ['-c', '200', '-i', '0.01', ADDR.hostB], { allowFailure: true })).stdout);
    sample.idleRtt = { p50: idle.p50, p99: idle.p99, max: idle.max };
    const loadedPing = nsExec(net.ns.ha, 'ping', ['-c', String(Math.max(50, (DUR - 3) * 50)), '-i', '0.02', ADDR.hostB], {
      allowFailure: true,
    });
    const tcp1 = parseIperfTcp(await iperf(net, ['-t', String(DUR)]));
    const loaded = parsePing((await loadedPing).stdout);
    sample.tcp1Mbps = tcp1.mbps;
    sample.tcp1Retransmits = tcp1.retransmits;
    sample.loadedRtt = { p50: loaded.p50, p99: loaded.p99, max: loaded.max };
    sample.tcp4Mbps = parseIperfTcp(await iperf(net, ['-t', String(DUR), '-P', '4'])).mbps;
    const udp = parseIperfUdp(await iperf(net, ['-u', '-b', UDP_RATE, '-l', '1200', '-t', String(DUR)]));
    sample.udpGoodputMbps = udp.goodputMbps;
    sample.udpLossPercent = udp.lossPercent;
    sample.udpJitterMs = udp.jitterMs;
    // 18-byte UDP payloads make 60-byte frames, 64 bytes on a wire with its FCS.
    sample.smallFramesPps = parseIperfUdp(await iperf(net, ['-u', '-b', '0', '-l', '18', '-t', String(Math.min(DUR, 5))])).deliveredPps;
    for (const [role, pid] of Object.entries(running.procs)) {
      const u = procUsage(pid);
      if (u) sample.procs[role] = u;
    }
  } catch (e) {
    sample.error = e instanceof Error ? e.message : String(e);
    progress(`${name} run ${run}: ${sample.error}`);
  } finally {
    cleanup();
    process.removeListener('exit', cleanup);
  }
  return sample;
}

export type Aggregate = Record<string, Record<string, Summary>>;

function aggregate(samples: readonly RunSample[]): Aggregate {
  const out: Aggregate = {};
  for (const s of scenarios) {
    const mine = samples.filter((x) => x.scenario === s && !x.error);
    const pick = (f: (x: RunSample) => number) => summarise(mine.map(f));
    const row: Record<string, Summary> = {
      tcp1Mbps: pick((x) => x.tcp1Mbps),
      tcp4Mbps: pick((x) => x.tcp4Mbps),
      udpGoodputMbps: pick((x) => x.udpGoodputMbps),
      udpLossPercent: pick((x) => x.udpLossPercent),
      smallFramesPps: pick((x) => x.smallFramesPps),
      idleRttP50Ms: pick((x) => x.idleRtt.p50),
      idleRttP99Ms: pick((x) => x.idleRtt.p99),
      loadedRttP50Ms: pick((x) => x.loadedRtt.p50),
      loadedRttP99Ms: pick((x) => x.loadedRtt.p99),
      loadedRttMaxMs: pick((x) => x.loadedRtt.max),
    };
    const roles = new Set(mine.flatMap((x) => Object.keys(x.procs)));
    for (const r of roles) {
      row[`${r}PeakRssMb`] = pick((x) => x.procs[r]?.peakRssMb ?? NaN);
      row[`${r}CpuS`] = pick((x) => x.procs[r]?.cpuS ?? NaN);
    }
    out[s] = row;
  }
  return out;
}

if (process.getuid?.() !== 0) {
  process.stderr.write('bench: needs root (network namespaces); run as root\n');
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'ck-bench-'));
const samples: RunSample[] = [];
progress(`${RUNS} runs x ${scenarios.join(', ')}; ${DUR}s per iperf3 test; work dir ${work}`);
for (let run = 1; run <= RUNS; run++) {
  // Alternate the order so drift on this shared machine does not favour one scenario.
  const order = run % 2 ? scenarios : [...scenarios].reverse();
  for (const s of order) {
    progress(`run ${run}/${RUNS}: ${s}`);
    const sample = await measure(s, run, work);
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
  settings: { runs: RUNS, durationS: DUR, udpRate: UDP_RATE, scenarios },
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
