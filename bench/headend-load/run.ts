// SPDX-License-Identifier: UNLICENSED
// `npm run bench:headend-load -- --sessions N --tenants K [--cycles C] [--bcast-per-s B] [--no-netns] [--pin]
//   [--l2 kernel] [--workers W] [--fleet-procs P] [--fleet-nice 19]`:
// issue 19's phases against a real headend process of this repo, with N real TLS sessions (load.ts, a
// child) and a probe session pinging every 20 ms (probe.ts, in this process, which does nothing else
// heavy; the fleet is one process per 1,000 devices unless --fleet-procs). Run as root it re-executes itself in a fresh network namespace (loopback only), so the TCP
// counters (listen-queue overflows) are the headend's alone; `ulimit -n` is raised for every process.
// Phases: idle baseline, steady (bring-up, RSS and CPU), metrics scrape, registry change, kill -9 of the
// fleet (teardown), fleet back, SIGTERM of the headend (exit time, audit verifies), restart and
// reconnect storm, C storm cycles (kill -9 + all at once) with RSS. JSON on stdout, a table on stderr.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeFleetPki, registryDoc } from './fleet.js';
import { Probe, type ProbeStats } from './probe.js';
import {
  auditVerifies,
  establishedOn,
  REPO,
  slabMb,
  startHeadendProcess,
  tcpExt,
  treeCpuMs,
  treeRssMb,
  type HeadendChild,
} from './proc.js';
import { cpuMs as ownCpuMs } from './proc.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = arg('sessions', 1_000);
const K = arg('tenants', N);
const CYCLES = arg('cycles', 3);
const BCAST = arg('bcast-per-s', 20);
const STEADY_S = arg('steady-s', 10);
const UP_TIMEOUT_S = arg('up-timeout-s', 120);
const CONNECT_TIMEOUT_MS = 15_000;
// The fleet's processes: one per 1,000 devices by default (one loop answering thousands of handshakes
// bunches them, which no fleet of real units does, and past ~4,000 its own delays made sessions flap).
const FLEET_PROCS = Math.max(1, arg('fleet-procs', Math.ceil(N / 1_000)));
// The reference in the same run: admission pacing off (every connection goes on to TLS at once).
const UNPACED = argv.includes('--unpaced');
const MAX_HANDSHAKES = arg('max-handshakes', 0);
const ACCEPT_PER_S = arg('accept-per-s', 0);
const TICKET_LIFETIME_S = arg('ticket-lifetime-s', 0);
// Without shared ticket keys each headend process has its own: after a restart every handshake is full.
const RESUMPTION = !argv.includes('--no-resumption');
// --pin: the fleet stands for devices on the internet; pinned, it cannot take the headend's CPU (the
// headend and the probe share CPU 0, the fleet the others). Off by default: on a 2-core box the fleet
// then has one core for N clients' handshakes, which slows the storm it is meant to produce.
const PIN = argv.includes('--pin') && availableParallelism() >= 2;
// --fleet-nice: the fleet's processes at this nice value. The fleet's TLS clients cost more CPU per
// session than the headend (5.6 against 3.5 ms in a storm) and, on this box, the same two cores: at nice
// 0 the headend waits for the CPU the fleet holds, and the probe counts that wait as the headend's. At
// 19 the fleet gets whatever the headend and the probe leave, all of both cores when they are idle.
const FLEET_NICE = arg('fleet-nice', 0);
if (!(Number.isInteger(FLEET_NICE) && FLEET_NICE >= 0 && FLEET_NICE <= 19)) throw new Error(`--fleet-nice must be 0-19, got ${FLEET_NICE}`);
// The kernel L2 engine (each session a TAP port of a Linux bridge) and worker processes; RSS and CPU are
// then the sums over the headend's process tree, and the kernel's slab growth is reported beside them.
const KERNEL = argv.includes('--l2') && argv[argv.indexOf('--l2') + 1] === 'kernel';
const WORKERS = arg('workers', 1);

// Root: run inside a fresh namespace with a raised fd limit, then remove the namespace.
if (process.env['CK_LOAD_INNER'] === undefined) {
  const ns = `ckload-${process.pid}`;
  const useNs = process.getuid?.() === 0 && !argv.includes('--no-netns') && spawnSync('ip', ['netns', 'add', ns]).status === 0;
  const self = [process.execPath, '--import', 'tsx', new URL(import.meta.url).pathname, ...argv].map((a) => `'${a}'`).join(' ');
  const script = `${useNs ? 'ip link set lo up && ' : ''}ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${self}`;
  const cmd = useNs ? ['ip', ['netns', 'exec', ns, 'bash', '-c', script]] : ['bash', ['-c', script]];
  const r = spawnSync(cmd[0] as string, cmd[1] as string[], {
    stdio: 'inherit',
    cwd: REPO,
    env: { ...process.env, CK_LOAD_INNER: useNs ? ns : 'host' },
  });
  if (useNs) spawnSync('ip', ['netns', 'del', ns]);
  process.exit(r.status ?? 1);
}

/** Every thread of `pid` onto `cpus` (taskset's list syntax); best effort, the run says whether it pinned. */
function pin(pid: number | undefined, cpus: string): void {
  if (pid !== undefined) spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();
const mb = (x: number): number => +x.toFixed(1);

interface FleetReport {
  up: number;
  attempts: number;
  timeouts: number;
  refusedPreTls: number;
  rxFrames: number;
  /** The fleet's own event-loop delay since `resetLoop()`: the worst of its processes. */
  loopP99Ms: number;
  loopMaxMs: number;
  at: number;
}

/** The fleet: `procs` child processes, each running a slice of the devices; their reports summed. */
class FleetChild {
  last: FleetReport = { up: 0, attempts: 0, timeouts: 0, refusedPreTls: 0, rxFrames: 0, loopP99Ms: 0, loopMaxMs: 0, at: 0 };
  /** When the fleet's first attempt was reported: the child's own start-up (tsx, N clients) is not the headend's. */
  firstAttemptAt = NaN;
  readonly reached = new Map<number, number>();
  readonly children: ChildProcess[] = [];
  readonly #parts: FleetReport[] = [];
  constructor(fleetFile: string, procs: number) {
    const per = Math.ceil(N / procs);
    for (let p = 0; p < procs && p * per < N; p++) {
      const slice = [String(p * per), String(Math.min(N, (p + 1) * per))];
      const cmd = [process.execPath, '--import', 'tsx', join(REPO, 'bench/headend-load/load.ts'), fleetFile, ...slice];
      // Through nice(1), so every thread the child starts has the value from its first instruction.
      const [exe, ...args] = FLEET_NICE > 0 ? ['nice', '-n', String(FLEET_NICE), ...cmd] : cmd;
      const child = spawn(exe as string, args, {
        cwd: REPO,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      this.children.push(child);
      this.#parts.push({ ...this.last });
      child.on('message', (m) => {
        this.#parts[p] = m as FleetReport;
        const sum = (k: keyof FleetReport): number => this.#parts.reduce((a, r) => a + r[k], 0);
        this.last = {
          up: sum('up'),
          attempts: sum('attempts'),
          timeouts: sum('timeouts'),
          refusedPreTls: sum('refusedPreTls'),
          rxFrames: sum('rxFrames'),
          loopP99Ms: Math.max(...this.#parts.map((r) => r.loopP99Ms)),
          loopMaxMs: Math.max(...this.#parts.map((r) => r.loopMaxMs)),
          at: Date.now(),
        };
        if (Number.isNaN(this.firstAttemptAt) && this.last.attempts > 0) this.firstAttemptAt = now();
        for (const f of [0.5, 0.95, 1]) if (!this.reached.has(f) && this.last.up >= Math.ceil(f * N)) this.reached.set(f, now());
      });
    }
  }
  /** CPU the fleet's processes used so far, ms. */
  cpuMs(): number {
    return this.children.reduce((a, c) => a + ownCpuMs(c.pid ?? 0), 0);
  }
  /** Waits until all N are up. */
  waitUp(what: string, timeoutMs = UP_TIMEOUT_S * 1000): Promise<void> {
    return this.#waitUntil(() => this.last.up >= N, `${what}: not all ${N} up`, timeoutMs);
  }
  /** Waits until every device has reported its session gone, so a storm's clock starts from none up. */
  waitDown(what: string, timeoutMs = 60_000): Promise<void> {
    return this.#waitUntil(() => this.last.up === 0, `${what}: not all ${N} down`, timeoutMs);
  }
  /** Starts the fleet's loop-delay figures afresh (each process's own monitor). */
  resetLoop(): void {
    for (const c of this.children) if (c.connected) c.send({ resetLoop: true });
  }
  async #waitUntil(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > until) throw new Error(`${what}: ${this.last.up} up after ${timeoutMs} ms`);
      await sleep(50);
    }
  }
  kill(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

function get(port: number, path: string, keep = false): Promise<{ bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let n = 0;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (keep) parts.push(c);
      });
      res.on('end', () => resolve({ bytes: n, text: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitSessions(port: number, want: number, timeoutMs: number): Promise<number> {
  const t0 = now();
  while (now() - t0 < timeoutMs) {
    if (establishedOn(port) <= want) return now() - t0;
    await sleep(100);
  }
  return NaN;
}

const dir = mkdtempSync(join(tmpdir(), 'ck-headend-load-'));
const out: Record<string, unknown> = {
  sessions: N,
  tenants: K,
  l2: KERNEL ? 'kernel' : 'userspace',
  workers: WORKERS,
  fleetProcs: FLEET_PROCS,
  unpaced: UNPACED,
  cycles: CYCLES,
  bcastPerS: BCAST,
  netns: process.env['CK_LOAD_INNER'],
};
const children: ChildProcess[] = [];
let headend: HeadendChild | null = null;
let fleet: FleetChild | null = null;
let probe: Probe | null = null;
try {
  const tPki = now();
  const pki = await makeFleetPki(dir, N);
  out['pkiMs'] = Math.round(now() - tPki);
  const serials = pki.devices.map((d) => d.serial);
  const registryFile = join(dir, 'registry.json');
  writeFileSync(registryFile, JSON.stringify(registryDoc(serials, K)));
  const port = 4443;
  const metricsPort = 9443;
  const auditLog = join(dir, 'audit.jsonl');
  const configFile = join(dir, 'headend.json');
  const ticketKeysFile = join(dir, 'tickets.keys');
  writeFileSync(ticketKeysFile, randomBytes(48).toString('hex') + '\n');
  writeFileSync(
    configFile,
    JSON.stringify({
      listen: {
        host: '127.0.0.1',
        port,
        ...(UNPACED ? { maxHandshakes: 100_000, maxQueued: 0, acceptPerS: 1_000_000, acceptBurst: 1_000_000 } : {}),
        ...(MAX_HANDSHAKES > 0 ? { maxHandshakes: MAX_HANDSHAKES } : {}),
        ...(ACCEPT_PER_S > 0 ? { acceptPerS: ACCEPT_PER_S, acceptBurst: Math.max(1, Math.round(ACCEPT_PER_S / 10)) } : {}),
      },
      tls: {
        cert: pki.serverCertFile,
        key: pki.serverKeyFile,
        deviceCa: pki.deviceCaFile,
        ...(RESUMPTION ? { ticketKeys: ticketKeysFile } : {}),
        ...(TICKET_LIFETIME_S > 0 ? { ticketLifetimeS: TICKET_LIFETIME_S } : {}),
      },
      registry: registryFile,
      auditLog,
      metrics: { host: '127.0.0.1', port: metricsPort },
      vxlan: { localAddress: '127.0.0.1', port: KERNEL ? 4789 : 0, vtepPort: 4789 },
      ...(KERNEL ? { l2: { engine: 'kernel' }, workers: WORKERS } : {}),
    }),
  );
  const fleetFile = join(dir, 'fleet.json');
  writeFileSync(
    fleetFile,
    JSON.stringify({
      port,
      caPem: pki.dcCaPem,
      keyPem: pki.deviceKeyPem,
      devices: pki.devices,
      bcastPerS: BCAST,
      keepaliveMs: 5_000,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    }),
  );
  const newFleet = (): FleetChild => {
    const f = new FleetChild(fleetFile, FLEET_PROCS);
    children.push(...f.children);
    if (PIN) for (const c of f.children) pin(c.pid, `1-${availableParallelism() - 1}`);
    return f;
  };
  if (PIN) pin(process.pid, '0');
  out['fleetNice'] = FLEET_NICE;
  out['pinned'] = PIN ? { headendAndProbe: '0', fleet: `1-${availableParallelism() - 1}` } : false;
  let hn = 0;
  headend = await startHeadendProcess(configFile, dir, ++hn);
  children.push(headend.child);
  if (PIN) pin(headend.pid, '0');
  probe = new Probe({ port, key: pki.probe.key, cert: pki.probe.cert, ca: pki.dcCaPem });
  probe.start();
  await sleep(3_000);
  const idleRss = treeRssMb(headend.pid);
  const idleSlab = slabMb();
  out['idle'] = { rssMb: mb(idleRss) };

  // Steady: the fleet comes up (all at once), then a quiet window with keepalives and broadcasts.
  let cpu0 = treeCpuMs(headend.pid);
  let t0 = now();
  fleet = newFleet();
  await fleet.waitUp('bring-up');
  const upMs = now() - Math.max(t0, fleet.firstAttemptAt);
  const upCpu = treeCpuMs(headend.pid) - cpu0;
  const fleetUpCpu = fleet.cpuMs();
  await sleep(2_000);
  cpu0 = treeCpuMs(headend.pid);
  t0 = now();
  await sleep(STEADY_S * 1000);
  const steadyCpu = ((treeCpuMs(headend.pid) - cpu0) / (now() - t0)) * 100;
  const upRss = treeRssMb(headend.pid);
  const upSlab = slabMb();
  out['steady'] = {
    upMs: Math.round(upMs),
    sessionsPerS: Math.round(N / (upMs / 1000)),
    cpuMsPerSessionUp: +(upCpu / N).toFixed(2),
    fleetCpuMsPerSessionUp: +(fleetUpCpu / N).toFixed(2),
    attempts: fleet.last.attempts,
    timedOut: fleet.last.timeouts,
    rssMb: mb(upRss),
    rssPerSessionKb: +(((upRss - idleRss) * 1024) / N).toFixed(1),
    // The machine's slab growth (TAP ports live there with the kernel engine); other processes add noise.
    slabPerSessionKb: +(((upSlab - idleSlab) * 1024) / N).toFixed(1),
    cpuPct: +steadyCpu.toFixed(1),
    probe: probe.stats(t0, now()),
  };

  // A metrics scrape at K segments: the default (per tenant) view and the per-segment detail.
  const scrape: Record<string, unknown> = {};
  for (const path of ['/metrics', '/metrics?detail=segment']) {
    await sleep(500);
    const s0 = now();
    const { bytes } = await get(metricsPort, path);
    const ms = now() - s0;
    await sleep(200);
    scrape[path] = { bytes, ms: Math.round(ms), probe: probe.stats(s0, now()) };
  }
  out['scrape'] = scrape;

  // A registry change: one tenant and segment more, SIGHUP.
  writeFileSync(registryFile, JSON.stringify(registryDoc(serials, K, 1)));
  t0 = now();
  headend.child.kill('SIGHUP');
  await sleep(3_000);
  out['registryChange'] = { probe: probe.stats(t0, now()) };

  // kill -9 of the fleet: the headend closes N sessions.
  t0 = now();
  fleet.kill();
  const closeMs = await waitSessions(port, 1, 60_000);
  await sleep(1_000);
  const teardownProbe = probe.stats(t0, now());
  // The quiet after it: the headend collects and hands memory back once the count has settled.
  const t1 = now();
  await sleep(5_000);
  const settleProbe = probe.stats(t1, now());
  const afterRss = treeRssMb(headend.pid);
  // The headend's own view: how much of what stays is the JS heap, and whether freed memory went back.
  const memText = (await get(metricsPort, '/metrics', true)).text;
  const gauge = (re: RegExp): number => {
    const all = [...memText.matchAll(re)].map((m) => Number(m[1]));
    return all.length ? all.reduce((a, b) => a + b, 0) : NaN;
  };
  out['teardown'] = {
    closeMs: Math.round(closeMs),
    probe: teardownProbe,
    settleProbe,
    rssAfterMb: mb(afterRss),
    heapUsedAfterMb: mb(gauge(/^connector_headend_memory_bytes\{(?:worker="\d+",)?kind="heap_used"\} (\d+)/gm) / 1e6),
    // V8's reserved heap and the memory Node holds outside it (buffers): RSS beyond these is the allocator's.
    heapTotalAfterMb: mb(gauge(/^connector_headend_memory_bytes\{(?:worker="\d+",)?kind="heap_total"\} (\d+)/gm) / 1e6),
    externalAfterMb: mb(gauge(/^connector_headend_memory_bytes\{(?:worker="\d+",)?kind="external"\} (\d+)/gm) / 1e6),
    memoryTrims: gauge(/^connector_headend_memory_trims_total\{(?:worker="\d+",)?released="yes"\} (\d+)/gm) || 0,
    idleRssMb: mb(idleRss),
    rssOverIdlePct: +((afterRss / idleRss - 1) * 100).toFixed(1),
  };

  // The fleet again, then SIGTERM with N up: exit time and the audit log.
  fleet = newFleet();
  t0 = now();
  await fleet.waitUp('second bring-up');
  out['rebuild'] = { upMs: Math.round(now() - Math.max(t0, fleet.firstAttemptAt)), timedOut: fleet.last.timeouts };
  await sleep(2_000);
  t0 = now();
  headend.child.kill('SIGTERM');
  await headend.exited;
  const exitMs = now() - t0;
  const verify = auditVerifies(auditLog);
  out['sigterm'] = { exitMs: Math.round(exitMs), auditVerifies: verify.ok, ...(verify.ok ? {} : { verifyOutput: verify.output }) };

  // Restart: the reconnect storm. A fleet at low priority may not have read every close yet; a count
  // left over from the old headend would mark 50 % up before the new one listens.
  await fleet.waitDown('after the stop');
  const ext0 = tcpExt();
  const before = { ...fleet.last };
  fleet.reached.clear();
  headend = await startHeadendProcess(configFile, dir, ++hn);
  children.push(headend.child);
  if (PIN) pin(headend.pid, '0');
  cpu0 = treeCpuMs(headend.pid);
  const fleetCpu0 = fleet.cpuMs();
  const tListen = now();
  fleet.resetLoop();
  await fleet.waitUp('storm');
  const fleetLoop = { p99Ms: +fleet.last.loopP99Ms.toFixed(1), maxMs: +fleet.last.loopMaxMs.toFixed(1) };
  const stormCpu = treeCpuMs(headend.pid) - cpu0;
  const fleetStormCpu = fleet.cpuMs() - fleetCpu0;
  const tDone = now();
  await sleep(500);
  const ext1 = tcpExt();
  // What the headend says about the storm: refusals by reason, handshakes done for clients that left.
  const metricsText = (await get(metricsPort, '/metrics', true)).text;
  // Summed over workers (a headend of several processes labels each series with its worker).
  const counter = (re: RegExp): Record<string, number> => {
    const sums: Record<string, number> = {};
    for (const m of metricsText.matchAll(re)) sums[m[1] ?? ''] = (sums[m[1] ?? ''] ?? 0) + Number(m[2]);
    return sums;
  };
  const refusals = counter(/^connector_headend_refusals_total\{(?:worker="\d+",)?reason="([^"]+)"\} (\d+)/gm);
  const handshakes = counter(/^connector_headend_handshakes_total\{(?:worker="\d+",)?resumed="([a-z]+)"\} (\d+)/gm);
  const wasted = counter(/^connector_headend_handshakes_wasted_total()(?:\{(?:worker="\d+")?\})? (\d+)/gm)[''] ?? 0;
  const since = (f: number): number => Math.round((fleet?.reached.get(f) ?? NaN) - tListen);
  out['storm'] = {
    t50Ms: since(0.5),
    t95Ms: since(0.95),
    t100Ms: since(1),
    attempts: fleet.last.attempts - before.attempts,
    timedOut: fleet.last.timeouts - before.timeouts,
    refusedPreTls: fleet.last.refusedPreTls - before.refusedPreTls,
    listenOverflows: (ext1['ListenOverflows'] ?? 0) - (ext0['ListenOverflows'] ?? 0),
    listenDrops: (ext1['ListenDrops'] ?? 0) - (ext0['ListenDrops'] ?? 0),
    cpuMsPerSession: +(stormCpu / N).toFixed(2),
    fleetCpuMsPerSession: +(fleetStormCpu / N).toFixed(2),
    // Both sides' CPU for the storm spread over every core of the box: the fastest any headend could
    // bring N up here, with the fleet's own handshakes on the same cores.
    cpuBoundMs: Math.round((stormCpu + fleetStormCpu) / availableParallelism()),
    fleetLoop,
    refusals,
    handshakes,
    handshakesWasted: wasted,
    probe: probe.stats(tListen, tDone),
  };

  // Storm cycles against one headend process: kill -9 the fleet, all back at once; RSS each time.
  const cycles: { rssUpMb: number; rssDownMb: number; upMs: number }[] = [];
  for (let c = 0; c < CYCLES; c++) {
    fleet.kill();
    await waitSessions(port, 1, 60_000);
    await sleep(3_000);
    const down = treeRssMb(headend.pid);
    fleet = newFleet();
    t0 = now();
    await fleet.waitUp(`cycle ${c + 1}`);
    cycles.push({ rssDownMb: mb(down), rssUpMb: mb(treeRssMb(headend.pid)), upMs: Math.round(now() - Math.max(t0, fleet.firstAttemptAt)) });
  }
  fleet.kill();
  await waitSessions(port, 1, 60_000);
  await sleep(3_000);
  const finalDown = treeRssMb(headend.pid);
  const firstDown = cycles[0]?.rssDownMb ?? finalDown;
  out['cycles'] = { rows: cycles, finalDownMb: mb(finalDown), growthPct: +((finalDown / firstDown - 1) * 100).toFixed(1) };
} catch (e) {
  out['error'] = (e as Error).message;
} finally {
  probe?.stop();
  // The last headend stops as asked first, so a profiler started through CK_LOAD_HEADEND_NODE_ARGS writes out.
  if (headend && headend.child.exitCode === null && headend.child.signalCode === null) {
    headend.child.kill('SIGTERM');
    await Promise.race([headend.exited, sleep(5_000)]);
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (argv.includes('--keep')) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(out, null, 2) + '\n');
table(out);

function table(o: Record<string, unknown>): void {
  const p = (s: ProbeStats | undefined): string =>
    s ? `probe p50 ${s.p50Ms} / p99 ${s.p99Ms} / max ${s.maxMs} ms (${s.answered}/${s.pings})` : '';
  const r = (x: unknown): Record<string, any> => (x ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const st = r(o['steady']);
  const td = r(o['teardown']);
  const sg = r(o['sigterm']);
  const sm = r(o['storm']);
  const cy = r(o['cycles']);
  const sc = r(o['scrape']);
  const lines = [
    `headend load: ${N} sessions, ${K} tenants${UNPACED ? ', UNPACED' : ''}${RESUMPTION ? '' : ', no resumption'}${FLEET_NICE > 0 ? `, fleet at nice ${FLEET_NICE}` : ''}, netns ${String(o['netns'])}${o['error'] ? `; ERROR ${String(o['error'])}` : ''}`,
    `idle            RSS ${r(o['idle'])['rssMb']} MB`,
    `steady          up in ${st['upMs']} ms (${st['sessionsPerS']}/s, CPU per session: headend ${st['cpuMsPerSessionUp']} ms, fleet ${st['fleetCpuMsPerSessionUp']} ms), RSS ${st['rssMb']} MB (${st['rssPerSessionKb']} KB/session, kernel slab ${st['slabPerSessionKb']} KB/session), CPU ${st['cpuPct']} %; ${p(st['probe'])}`,
    ...Object.entries(sc).map(([k, v]) => `scrape ${k.padEnd(24)} ${r(v)['bytes']} B in ${r(v)['ms']} ms; ${p(r(v)['probe'])}`),
    `registry change ${p(r(o['registryChange'])['probe'])}`,
    `teardown -9     closed in ${td['closeMs']} ms; ${p(td['probe'])}; RSS after ${td['rssAfterMb']} MB vs idle ${td['idleRssMb']} (+${td['rssOverIdlePct']} %), JS heap ${td['heapUsedAfterMb']} of ${td['heapTotalAfterMb']} MB, external ${td['externalAfterMb']} MB, trims ${td['memoryTrims']}; the 5 s after: ${p(td['settleProbe'])}`,
    `SIGTERM         exit ${sg['exitMs']} ms, audit verifies ${sg['auditVerifies']}`,
    `storm           50/95/100 % up at ${sm['t50Ms']}/${sm['t95Ms']}/${sm['t100Ms']} ms; attempts ${sm['attempts']}, timed out ${sm['timedOut']}, closed pre-TLS ${sm['refusedPreTls']}, listen overflows ${sm['listenOverflows']}, handshakes ${JSON.stringify(sm['handshakes'])}, wasted ${sm['handshakesWasted']}, refusals ${JSON.stringify(sm['refusals'])}, CPU per session: headend ${sm['cpuMsPerSession']} ms, fleet ${sm['fleetCpuMsPerSession']} ms (both over ${availableParallelism()} cores: ${sm['cpuBoundMs']} ms), the fleet's loop delay p99 / max ${r(sm['fleetLoop'])['p99Ms']} / ${r(sm['fleetLoop'])['maxMs']} ms; ${p(sm['probe'])}`,
    `cycles          RSS down/up ${((cy['rows'] ?? []) as { rssDownMb: number; rssUpMb: number }[]).map((c) => `${c.rssDownMb}/${c.rssUpMb}`).join(', ')}; final ${cy['finalDownMb']} MB, growth ${cy['growthPct']} %`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
}
