// SPDX-License-Identifier: UNLICENSED
// Profiles the connector data path under load: builds the bench's connector scenario, runs one iperf3
// TCP stream ha -> hb (or hb -> ha with --reverse) and reports where agent and headend spend CPU.
//   --mode cpuprof : agent and headend run with --cpu-prof; prints the top self-time JS functions of each
//   --mode perf    : `perf record -a -g` over the load (agent/headend with --perf-basic-prof), prints the
//                    per-process split between kernel, JS and native code
//   --mode loop    : event-loop delay percentiles of agent and headend under the load
//   --mode none    : load only, prints throughput and each daemon's CPU seconds per GB carried
//   --hold         : leave the topology up until Ctrl-C (for poking by hand)
// Root only. Usage: node --import tsx bench/tunnel/profile.ts [--mode cpuprof] [--duration 10] [--reverse]
//   [--scenario connector|connector-datagram|connector-kernel-l2] [--wan metro|regional|continental|lossy]
// Env CK_BENCH_AGENT_OPTIONS='name=value,...' adds agent options (e.g. lan_coalesce=0 for a "before");
// CK_BENCH_VXLAN_COALESCE=0 and CK_BENCH_FABRIC_GRO=0 turn off the headend's coalescing and its fabric GRO.
// CK_BENCH_SEND_THREADS=1 or 0: both daemons' send threads on or off, whatever their default here.
// CK_BENCH_AGENT_NODE_OPTIONS='--max-semi-space-size=2': node options for the agent alone (V8 heap flags).
// CK_BENCH_HEADEND_NODE_OPTIONS: the same for the headend alone.
//   --slow-core F  : each daemon confined to F of one core (as the bench's slow-core mode);
//   --slow-cores   : with it, each agent thread that carries frames gets a slow core of its own (slow-cores.ts)
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { WAN_PROFILES } from '../../src/lab/core/wan.js';
import { exec } from '../../src/shared/exec.js';
import { nsExec, spawnInNetns, uniquePrefix, isAlive } from '../../src/lab/adapters/netns.js';
import { ADDR, benchNet, teardown, waitForPing } from './topology.js';
import { procUsage, startScenario, threadUsage } from './scenarios.js';
import { slowCores } from './slow-cores.js';
import { limitCpu, removeCpuGroups } from '../../src/lab/adapters/cpu-limit.js';
import { parseIperfTcp, parseIperfUdp, parsePing } from './stats.js';

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'none' },
    duration: { type: 'string', default: '10' },
    reverse: { type: 'boolean', default: false },
    streams: { type: 'string', default: '1' },
    udp: { type: 'string' },
    // A TCP rate below what the box can carry (e.g. 800M): each thread's cost per GB without the
    // contention of two saturated cores, the figure that scales to a device whose cores are the agent's.
    rate: { type: 'string' },
    hold: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
    nice: { type: 'string' },
    cc: { type: 'string' },
    len: { type: 'string', default: '1200' },
    scenario: { type: 'string', default: 'connector' },
    wan: { type: 'string', default: 'none' },
    'slow-core': { type: 'string' },
    'slow-cores': { type: 'boolean', default: false },
  },
});
const SLOW_CORE = opt['slow-core'] === undefined ? undefined : Number(opt['slow-core']);
const DUR = Number(opt.duration);
const mode = opt.mode ?? 'none';
if (!['none', 'cpuprof', 'perf', 'loop'].includes(mode)) throw new Error(`--mode must be none, cpuprof, perf or loop, got ${mode}`);
const SCENARIOS = ['connector', 'connector-datagram', 'connector-kernel-l2'] as const;
const scenario = SCENARIOS.find((x) => x === opt.scenario);
if (!scenario) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}, got ${opt.scenario}`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line) from a .cpuprofile, as a share of all samples. */
export function topSelf(profile: CpuProfile, n: number): { name: string; pct: number }[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  let total = 0;
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (!node) continue;
    const cf = node.callFrame;
    const file = cf.url.replace(/^.*\/(src|node_modules)\//, '$1/');
    const key = `${cf.functionName || '(anonymous)'} ${file ? `${file}:${cf.lineNumber + 1}` : ''}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, c]) => ({ name, pct: (100 * c) / total }));
}

function progress(msg: string): void {
  process.stderr.write(`[profile] ${msg}\n`);
}

if (process.getuid?.() !== 0) {
  process.stderr.write('profile: needs root (network namespaces)\n');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'ck-prof-'));
const wan = opt.wan === 'none' ? undefined : WAN_PROFILES[opt.wan ?? ''];
if (opt.wan !== 'none' && wan === undefined)
  throw new Error(`--wan must be none or one of ${Object.keys(WAN_PROFILES).join(', ')}, got ${opt.wan}`);
const net = benchNet(uniquePrefix('ckp'), wan);
const daemons: number[] = [];
process.once('exit', () => {
  for (const pid of daemons) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  teardown(net);
  if (SLOW_CORE !== undefined) removeCpuGroups(`${net.prefix}-`);
});
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));
const profDir = join(work, 'prof');
if (mode === 'cpuprof') {
  // node refuses --cpu-prof in NODE_OPTIONS; a preloaded hook takes the profile instead.
  process.env.NODE_OPTIONS = `--import ${new URL('./cpu-prof-hook.mjs', import.meta.url).href}`;
  process.env.CK_CPU_PROF_DIR = profDir;
}
if (mode === 'loop') {
  process.env.NODE_OPTIONS = `--import ${new URL('./loop-delay-hook.mjs', import.meta.url).href}`;
  process.env.CK_LOOP_DELAY_DIR = profDir;
}
if (mode === 'perf') process.env.NODE_OPTIONS = '--perf-basic-prof-only-functions --interpreted-frames-native-stack';
const running = await startScenario(scenario, net, work);
delete process.env.NODE_OPTIONS;
daemons.push(...Object.values(running.procs));
delete process.env.CK_CPU_PROF_DIR;
delete process.env.CK_LOOP_DELAY_DIR;
if (!(await waitForPing(net.ns.ha, ADDR.hostB, 30_000))) throw new Error(`no connectivity; logs in ${work}`);
const cores =
  SLOW_CORE === undefined
    ? null
    : opt['slow-cores'] === true
      ? slowCores(net.prefix, running.procs, SLOW_CORE)
      : (Object.entries(running.procs).forEach(([role, pid]) => limitCpu(`${net.prefix}-${role}`, SLOW_CORE).add(pid)), null);
if (cores) {
  await sleep(1_000); // the lanes' workers name themselves once their session is up
  progress(`slow cores of ${SLOW_CORE}: agent threads ${JSON.stringify(cores.placed())}`);
}
if (opt.nice) for (const pid of Object.values(running.procs)) await exec('renice', ['-n', opt.nice, '-p', String(pid)]);
progress(`up: agent ${running.procs.agent}, headend ${running.procs.headend}; work dir ${work}`);
const idle = parsePing((await nsExec(net.ns.ha, 'ping', ['-c', '100', '-i', '0.01', ADDR.hostB], { allowFailure: true })).stdout);
progress(`idle RTT p50 ${idle.p50} ms p99 ${idle.p99} ms`);

const cpuTotals = (): { busy: number; all: number } => {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const all = f.reduce((a, b) => a + b, 0);
  return { busy: all - (f[3] ?? 0) - (f[4] ?? 0), all };
};
const sys0 = cpuTotals();
const before = Object.fromEntries(Object.entries(running.procs).map(([k, pid]) => [k, procUsage(pid)?.cpuS ?? 0]));
const threadsBefore = Object.fromEntries(Object.entries(running.procs).map(([k, pid]) => [k, threadUsage(pid)]));
const server = spawnInNetns(net.ns.hb, 'iperf3', ['-s', '-1', '-p', '5201'], { logFile: '/dev/null' });
await sleep(300);
const signal = (sig: NodeJS.Signals): void => {
  for (const pid of Object.values(running.procs)) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
};
if (mode === 'cpuprof' || mode === 'loop') signal('SIGUSR2');
const pids = Object.values(running.procs).join(',');
const perf =
  mode === 'perf'
    ? exec('perf', ['record', '-g', '-F', '999', '-p', pids, '-o', join(work, 'perf.data'), '--', 'sleep', String(DUR)], {
        allowFailure: true,
      })
    : undefined;
const loadedPing = nsExec(net.ns.ha, 'ping', ['-c', String(Math.max(20, (DUR - 2) * 50)), '-i', '0.02', ADDR.hostB], {
  allowFailure: true,
});
const iperfArgs = ['-c', ADDR.hostB, '-p', '5201', '-J', '-t', String(DUR), '-P', opt.streams ?? '1'];
if (opt.reverse) iperfArgs.push('-R');
if (opt.cc) iperfArgs.push('-C', opt.cc);
if (opt.udp) iperfArgs.push('-u', '-b', opt.udp, '-l', opt.len ?? '1200');
else if (opt.rate) iperfArgs.push('-b', opt.rate);
const ip = await nsExec(net.ns.ha, 'iperf3', iperfArgs, { allowFailure: true, timeoutMs: (DUR + 20) * 1000 });
const loaded = parsePing((await loadedPing).stdout);
if (mode === 'cpuprof' || mode === 'loop') {
  signal('SIGUSR2');
  await sleep(1000);
}
try {
  process.kill(server, 'SIGKILL');
} catch {
  // exited after its one test
}
let mbps = NaN;
try {
  if (opt.udp) {
    const u = parseIperfUdp(ip.stdout);
    progress(`udp: ${u.deliveredPps.toFixed(0)} datagrams/s delivered, loss ${u.lossPercent.toFixed(1)} %`);
    mbps = u.goodputMbps;
  } else mbps = parseIperfTcp(ip.stdout).mbps;
} catch (e) {
  progress(`iperf3: ${e instanceof Error ? e.message : String(e)}`);
}
const sys1 = cpuTotals();
const gb = (mbps * DUR) / 8000;
progress(`machine: ${((100 * (sys1.busy - sys0.busy)) / (sys1.all - sys0.all)).toFixed(0)}% of all CPUs busy during the load`);
progress(
  `tcp ${mbps.toFixed(0)} Mbit/s; loaded RTT p50 ${loaded.p50} p99 ${loaded.p99} max ${loaded.max} ms (${loaded.received}/${loaded.sent})`,
);
for (const [k, pid] of Object.entries(running.procs)) {
  const u = procUsage(pid);
  if (!u) continue;
  const cpu = u.cpuS - (before[k] ?? 0);
  progress(
    `${k}: ${cpu.toFixed(2)} CPU s over ${DUR} s (${((100 * cpu) / DUR).toFixed(0)}% of a core), ${(cpu / gb).toFixed(2)} CPU s/GB, peak RSS ${u.peakRssMb.toFixed(0)} MB`,
  );
  // Which core-sized share each thread took: the busiest thread is the ceiling on a device with idle cores.
  const t0 = threadsBefore[k] ?? {};
  const split = Object.entries(threadUsage(pid))
    .map(([name, s]) => [name, s - (t0[name] ?? 0)] as const)
    .filter(([, s]) => s >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, s]) => `${name} ${(s / gb).toFixed(2)}`);
  progress(`${k} threads, CPU s/GB: ${split.join(', ')}`);
}
if (perf) await perf;
const warm = parsePing((await nsExec(net.ns.ha, 'ping', ['-c', '100', '-i', '0.01', ADDR.hostB], { allowFailure: true })).stdout);
progress(`idle RTT after the load (code warm) p50 ${warm.p50} ms p99 ${warm.p99} ms`);

if (opt.hold) {
  progress('holding; Ctrl-C to tear down');
  await new Promise(() => setInterval(() => {}, 60_000)); // an empty promise alone lets node exit
}
for (const pid of Object.values(running.procs)) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}
for (let i = 0; i < 50 && Object.values(running.procs).some(isAlive); i++) await sleep(100);

if (mode === 'cpuprof') {
  const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  for (const f of files) {
    const prof = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as CpuProfile;
    const pid = Number(/^CPU\.(\d+)\.cpuprofile$/.exec(f)?.[1]);
    const role = Object.entries(running.procs).find(([, p]) => p === pid)?.[0] ?? f;
    process.stdout.write(`\n== ${role} (${join(profDir, f)})\n`);
    for (const t of topSelf(prof, Number(opt.top))) process.stdout.write(`${t.pct.toFixed(1).padStart(5)}%  ${t.name}\n`);
  }
}
if (mode === 'loop') {
  for (const [role, pid] of Object.entries(running.procs)) {
    const f = join(profDir, `ELD.${pid}.json`);
    if (existsSync(f)) progress(`${role} event-loop delay (ms): ${readFileSync(f, 'utf8')}`);
  }
}
if (mode === 'perf') {
  const r = await exec('perf', ['report', '-i', join(work, 'perf.data'), '--no-children', '--sort', 'pid,dso', '--stdio'], {
    allowFailure: true,
  });
  process.stdout.write(
    r.stdout
      .split('\n')
      .filter((l) => l && !l.startsWith('#') && /%/.test(l))
      .slice(0, 40)
      .join('\n') + '\n',
  );
  progress(`perf data: ${join(work, 'perf.data')} (perf report -i ... --sort comm,sym)`);
}
process.exit(0);
