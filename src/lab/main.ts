// SPDX-License-Identifier: UNLICENSED
// `connector lab up|down|status|restart|exec`: builds the network lab in namespaces, writes its PKI,
// registry and configs, provisions each Connector's factory block with the factory tool, starts the EST
// server, the headend and the agents (which enroll for their identity before their tunnel), and takes
// everything down again from any state. Wiring only; nothing runs at import.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorError, UsageError, errorMessage } from '../shared/errors.js';
import { exec } from '../shared/exec.js';
import { writeRegistryFile } from '../shared/registry/registry-file.js';
import { agentUci, estConfig, estUrl, headendConfig, LAB_EST_TIMERS, LAB_SERIALS, labRegistry } from './core/configs.js';
import {
  DEFAULT_LAB_DIR,
  labHints,
  statusLines,
  tunnelSummaryOf,
  type LabStatusReport,
  type NodeStatus,
  type TunnelSummary,
} from './core/report.js';
import { DC, nsName, planLab, WIRINGS, type LabPlan, type PlanOptions, type TenantId, type Wiring } from './core/topology.js';
import { describeWan, type WanProfile } from './core/wan.js';
export { parseWanSpec } from './core/wan.js';
import { labWanProcess, waitWanReady } from './adapters/wan.js';
import { buildLab, checkTools, type Progress } from './adapters/build.js';
import { limitCpu, removeCpuGroups } from './adapters/cpu-limit.js';
import { execInNetnsInteractive, isAlive, netnsExists, netnsPids, removeNetnsWithPrefix, uniquePrefix } from './adapters/netns.js';
import { writeLabPki, type DeviceSpec } from './adapters/pki.js';
import { startLabProcess, stopLabProcess, tail, waitListening } from './adapters/processes.js';
import { programCommand } from './adapters/programs.js';
import { nodeNs, readLabState, removeLabState, tryReadLabState, writeLabState, type LabProcess, type LabState } from './adapters/state.js';
import { agentStatus, FACTORY_CA_CERT_FILE, factoryInitCa } from './adapters/tools.js';
import { provisionLabUnit, registerLabUnit } from './adapters/units.js';

export { DEFAULT_LAB_DIR } from './core/report.js';

export const REQUIRED_TOOLS = ['ip', 'nft', 'sysctl', 'ss', 'python3'] as const;
const METRICS_PORT = 9105;

export interface LabUpOptions {
  dir: string;
  wiring?: Wiring;
  /** Start the headend in `dc` (default true). */
  headend?: boolean;
  /** Start an agent in each connector node (default true; needs the headend). */
  agents?: boolean;
  /** Lifetime of the operational certificates the lab's EST server issues, s (default one day). */
  certLifetimeS?: number;
  /** Namespace prefix; default a fresh unique one. */
  prefix?: string;
  /** Slow-core mode: the headend and each agent confined to this fraction of one core (docs/lab.md). */
  slowCore?: number;
  /** A WAN (delay line) between isp and dc with this profile (docs/lab.md). */
  wan?: WanProfile;
  /** UDP NAT timeout of the isp's CGNAT and the customer routers, s (default the kernel's). */
  natUdpTimeoutS?: number;
  progress?: Progress;
  now?: Date;
}

function labError(message: string, cause?: unknown): ConnectorError {
  return new ConnectorError('CK_ERR_LAB', message, cause === undefined ? undefined : { cause });
}

export async function preflight(o: { agents: boolean }): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw labError('the lab creates network namespaces and needs root: run it with sudo (sudo npx connector lab up)');
  }
  const missing = await checkTools(REQUIRED_TOOLS);
  if (missing.length > 0) {
    throw labError(`missing tools: ${missing.join(', ')} (Debian: apt-get install iproute2 nftables procps python3)`);
  }
  if (o.agents && !existsSync('/dev/net/tun')) {
    throw labError('/dev/net/tun is missing: the agents need TAP devices (modprobe tun), or use --no-agents');
  }
}

/** What the agent in a connector node says about its tunnel (`connector-agent status --json`). */
export async function tunnelSummary(state: LabState, node: string, timeoutMs = 1_000): Promise<TunnelSummary> {
  const sock = state.files[`sock:${node}`];
  if (!sock) return { node, state: 'unknown', activeAlarms: 0, error: 'no status socket recorded' };
  try {
    return tunnelSummaryOf(node, await agentStatus(sock, timeoutMs));
  } catch (e) {
    return { node, state: 'unreachable', activeAlarms: 0, error: errorMessage(e) };
  }
}

function agentProcessName(t: TenantId): string {
  return `agent-${t}`;
}

/** Top-level entries of a lab directory that `lab up` creates. */
const LAB_GENERATED = ['pki', 'factory', 'dc', 'connector', 'connector-b', 'wan', 'registry.json', 'registry.json.lock'];

/** PKI, factory CAs, registry, EST and headend configs, one provisioned unit and UCI file per tenant. */
async function writeLabFiles(
  o: LabUpOptions,
  plan: LabPlan,
  now: Date,
  progress: Progress,
): Promise<Pick<LabState, 'processes' | 'files'>> {
  progress('generating the lab PKI (DC CA, device CA, factory CA, headend and EST server certificates)');
  const devices: DeviceSpec[] = [
    { serial: LAB_SERIALS.expired, issuer: 'device-ca', expired: true },
    { serial: LAB_SERIALS.denied, issuer: 'device-ca' },
    { serial: LAB_SERIALS.rogue, issuer: 'rogue-ca' },
    { serial: LAB_SERIALS.spare, issuer: 'device-ca' },
  ];
  const pkiDir = join(o.dir, 'pki');
  const pki = await writeLabPki(pkiDir, {
    now,
    headendIps: [plan.headend.publicAddr],
    headendDns: ['headend.lab.example'],
    estIps: [plan.headend.publicAddr],
    estDns: ['est.lab.example'],
    devices,
  });
  // The factory's own tool makes the factory CAs: ours, and another manufacturer's for the refusal test.
  const factoryCaDir = join(pkiDir, 'factory-ca');
  const rogueFactoryCaDir = join(pkiDir, 'rogue-factory-ca');
  await Promise.all([
    factoryInitCa(factoryCaDir, 'connector-kit lab factory CA', 5),
    factoryInitCa(rogueFactoryCaDir, 'somebody else factory CA', 5),
  ]);

  const dcDir = join(o.dir, 'dc');
  mkdirSync(dcDir, { recursive: true });
  const registry = join(dcDir, 'registry.json');
  writeRegistryFile(registry, labRegistry(now));
  const headendJson = join(dcDir, 'headend.json');
  const heFiles = { cert: pki.headendCert, key: pki.headendKey, deviceCa: pki.deviceCa, registry, auditLog: join(dcDir, 'audit.jsonl') };
  writeFileSync(headendJson, JSON.stringify(headendConfig(plan, heFiles, METRICS_PORT), null, 2) + '\n');
  const estJson = join(dcDir, 'est.json');
  const issuanceLog = join(dcDir, 'est-issued.jsonl');
  const est = estConfig(
    plan,
    {
      cert: pki.estCert,
      key: pki.estKey,
      factoryCas: [join(factoryCaDir, FACTORY_CA_CERT_FILE)],
      deviceCaCert: pki.deviceCa,
      deviceCaKey: pki.deviceCaKey,
      registry,
      issuanceLog,
    },
    { ...LAB_EST_TIMERS, ...(o.certLifetimeS !== undefined ? { certLifetimeS: o.certLifetimeS } : {}) },
  );
  writeFileSync(estJson, JSON.stringify(est, null, 2) + '\n');
  const manifestDir = join(o.dir, 'factory');
  mkdirSync(manifestDir, { recursive: true });
  const files: Record<string, string> = {
    registry,
    headendConfig: headendJson,
    auditLog: join(dcDir, 'audit.jsonl'),
    estConfig: estJson,
    estUrl: estUrl(plan),
    issuanceLog,
    dcCa: pki.dcCa,
    deviceCa: pki.deviceCa,
    rogueCa: pki.rogueCa,
    factoryCaDir,
    rogueFactoryCaDir,
    manifestDir,
    headendMetrics: `127.0.0.1:${METRICS_PORT}`,
  };
  for (const [serial, pair] of Object.entries(pki.devices)) {
    files[`cert:${serial}`] = pair.cert;
    files[`key:${serial}`] = pair.key;
  }

  const connector = programCommand('connector');
  const agentCmd = programCommand('connector-agent');
  const dcProcess = (name: string, args: string[]): LabProcess => ({
    name,
    node: plan.headend.node,
    pid: 0,
    cmd: [connector.cmd, ...connector.args, ...args],
    cwd: connector.cwd,
    log: join(dcDir, `${name}.log`),
  });
  const processes: LabProcess[] = [
    dcProcess('est', ['enroll-server', '--config', estJson]),
    dcProcess('headend', ['headend', '--config', headendJson]),
  ];
  for (const t of plan.tenants) {
    const nodeDir = join(o.dir, t.nodes.connector);
    const identityDir = join(nodeDir, 'identity');
    mkdirSync(identityDir, { recursive: true, mode: 0o700 });
    // Factory: a disk with nothing but the factory block. DC: allowlist import, then the tenant's claim.
    progress(
      `provisioning ${t.serial}: factory block in ${join(nodeDir, 'unit.img')}, allowlisted and claimed for tenant ${t.id.toUpperCase()}`,
    );
    const unit = await provisionLabUnit({
      serial: t.serial,
      target: join(nodeDir, 'unit.img'),
      factoryCaDir,
      estUrl: estUrl(plan),
      dcAnchorFile: pki.dcCa,
      manifestDir,
    });
    await registerLabUnit(registry, unit, now, { tenant: t.id, segment: 'default', site: `lab-site-${t.id}` });
    const uci = join(nodeDir, 'connector.uci');
    const sock = join(nodeDir, 'agent.sock');
    writeFileSync(
      uci,
      agentUci(plan, `lab-site-${t.id}`, {
        identityDir,
        statusSocket: sock,
        factoryBlockPath: unit.target,
        factoryBlockOffset: unit.offset,
      }),
    );
    files[`uci:${t.nodes.connector}`] = uci;
    files[`sock:${t.nodes.connector}`] = sock;
    files[`unit:${t.nodes.connector}`] = unit.target;
    files[`identity:${t.nodes.connector}`] = identityDir;
    processes.push({
      name: agentProcessName(t.id),
      node: t.nodes.connector,
      pid: 0,
      cmd: [agentCmd.cmd, ...agentCmd.args, 'run', '--config', uci],
      cwd: agentCmd.cwd,
      log: join(nodeDir, 'agent.log'),
    });
  }
  return { processes, files };
}

/** Waits (20 s at most) for every tenant's tunnel, so that when `lab up` returns the first ping works. */
async function waitTunnels(state: LabState, plan: LabPlan, progress: Progress): Promise<void> {
  const until = Date.now() + 20_000;
  for (const t of plan.tenants) {
    const p = state.processes.find((x) => x.name === agentProcessName(t.id));
    for (;;) {
      if (p && !isAlive(p.pid)) throw labError(`the agent of tenant ${t.id} exited during start-up; ${p.log} ends with:\n${tail(p.log)}`);
      const s = await tunnelSummary(state, t.nodes.connector, 500);
      if (s.state === 'up') {
        progress(
          `tunnel of tenant ${t.id.toUpperCase()} is up (VNI ${s.vni ?? '?'}${s.rttMs !== undefined ? `, RTT ${s.rttMs.toFixed(2)} ms` : ''})`,
        );
        break;
      }
      if (Date.now() > until) {
        const why =
          s.identity && s.identity !== 'ready' ? `; identity ${s.identity}${s.identityReason ? `: ${s.identityReason}` : ''}` : '';
        progress(`warning: the tunnel of tenant ${t.id.toUpperCase()} is not up yet (${s.state}${why}); see ${p?.log ?? 'the agent log'}`);
        break;
      }
      await sleep(100);
    }
  }
}

const planOptions = (o: { wan?: unknown; natUdpTimeoutS?: number | undefined }): PlanOptions => ({
  wan: o.wan !== undefined,
  ...(o.natUdpTimeoutS !== undefined ? { natUdpTimeoutS: o.natUdpTimeoutS } : {}),
});

/** Slow-core mode: puts the process `name` into its own cgroup limited to `fraction` of a core. */
function confine(state: LabState, name: string, fraction: number | undefined, progress: Progress): void {
  if (fraction === undefined) return;
  const p = state.processes.find((x) => x.name === name);
  if (!p || p.pid <= 0) return;
  limitCpu(`${state.prefix}-${name}`, fraction).add(p.pid);
  progress(`slow-core mode: ${name} confined to ${fraction} of a core`);
}

/**
 * How long a lab process may take to listen. Confined to a fraction of a core it starts that many times
 * slower: the headend needs about 3 s of CPU from sources (tsx), 23 s at an eighth of a core.
 */
function startUpMs(slowCore: number | undefined): number {
  const fullCoreMs = 20_000;
  return slowCore === undefined ? fullCoreMs : Math.min(fullCoreMs / slowCore, 180_000);
}

export async function labUp(o: LabUpOptions): Promise<LabState> {
  const progress = o.progress ?? (() => {});
  const wantHeadend = o.headend ?? true;
  const wantAgents = (o.agents ?? true) && wantHeadend;
  await preflight({ agents: wantAgents });
  const existing = tryReadLabState(o.dir);
  if (existing && Object.values(existing.nodes).some((ns) => netnsExists(ns))) {
    throw labError(`a lab is already up in ${o.dir} (prefix ${existing.prefix}); run "connector lab down --dir ${o.dir}" first`);
  }
  const now = o.now ?? new Date();
  const plan: LabPlan = planLab(o.wiring ?? 'one-port', planOptions(o));
  const prefix = o.prefix ?? uniquePrefix('ck');
  // A lab taken down leaves its files for reading; a new lab starts from fresh ones (PKI, factory CA,
  // unit disks, logs). Only the names a lab creates are removed, never anything else in --dir.
  for (const name of LAB_GENERATED) rmSync(join(o.dir, name), { recursive: true, force: true });
  mkdirSync(o.dir, { recursive: true });
  let state: LabState = {
    version: 1,
    prefix,
    dir: o.dir,
    wiring: plan.wiring,
    phase: 'building',
    createdAt: now.toISOString(),
    nodes: Object.fromEntries(plan.nodes.map((n) => [n.name, nsName(prefix, n.name)])),
    processes: [],
    files: {},
    ...(o.wan ? { wan: o.wan } : {}),
    ...(o.natUdpTimeoutS !== undefined ? { natUdpTimeoutS: o.natUdpTimeoutS } : {}),
  };
  // Saved before anything exists: a crash from here on leaves enough behind for `lab down`.
  writeLabState(state);
  try {
    await buildLab(prefix, plan, progress);
    state = { ...state, ...(await writeLabFiles(o, plan, now, progress)) };
    writeLabState(state);
    if (o.wan && plan.wan) {
      progress(`starting the WAN delay line in ${nsName(prefix, plan.wan.node)} (${describeWan(o.wan)})`);
      state = { ...state, processes: [...state.processes, labWanProcess(o.dir, plan.wan, o.wan)] };
      state = startLabProcess(state, 'wan');
      await waitWanReady(state.processes.find((p) => p.name === 'wan') as LabProcess);
    }

    if (wantHeadend) {
      progress(`starting the EST server in ${nsName(prefix, plan.headend.node)} (${estUrl(plan)})`);
      state = startLabProcess(state, 'est');
      progress(`starting the headend in ${nsName(prefix, plan.headend.node)} (${plan.headend.publicAddr}:${plan.headend.port})`);
      state = startLabProcess(state, 'headend');
      confine(state, 'headend', o.slowCore, progress);
      const es = state.processes.find((p) => p.name === 'est');
      if (es) await waitListening(state, es, DC.estPort, 20_000);
      const he = state.processes.find((p) => p.name === 'headend');
      if (he) await waitListening(state, he, plan.headend.port, startUpMs(o.slowCore));
    }
    if (wantAgents) {
      for (const t of plan.tenants) {
        progress(
          `starting the agent in ${nsName(prefix, t.nodes.connector)} (tenant ${t.id.toUpperCase()}, VNI ${t.vni}): enrolls over EST, then opens its tunnel`,
        );
        state = startLabProcess(state, agentProcessName(t.id));
        confine(state, agentProcessName(t.id), o.slowCore, progress);
      }
      await waitTunnels(state, plan, progress);
    }
    state = { ...state, phase: 'up' };
    writeLabState(state);
    return state;
  } catch (e) {
    progress(`lab up failed: ${errorMessage(e)}; removing what was built`);
    await labDown(o.dir).catch(() => undefined);
    throw e instanceof ConnectorError ? e : labError(`lab up failed: ${errorMessage(e)}`, e);
  }
}

export interface LabDownResult {
  prefix: string;
  namespaces: string[];
  killed: string[];
}

/** Removes a lab from any state: stops its processes, deletes its namespaces, forgets its state. */
export async function labDown(dir: string, prefix?: string): Promise<LabDownResult> {
  const state = tryReadLabState(dir);
  const pfx = prefix ?? state?.prefix;
  if (!pfx) throw labError(`no lab state in ${dir}; pass --prefix to remove namespaces named <prefix>-*`);
  const killed: string[] = [];
  for (const p of state?.processes ?? []) {
    if (p.pid > 0 && isAlive(p.pid)) {
      // SIGTERM first: the agent removes its TAP and says bye to the headend on the way out.
      await stopLabProcess(state as LabState, p.name, 'SIGTERM', 3_000);
      killed.push(p.name);
    }
  }
  const namespaces = removeNetnsWithPrefix(`${pfx}-`);
  removeCpuGroups(`${pfx}-`);
  if (state) removeLabState(dir);
  return { prefix: pfx, namespaces, killed };
}

export async function labStatus(dir: string): Promise<LabStatusReport> {
  const state = readLabState(dir);
  const nodes: NodeStatus[] = [];
  for (const [node, ns] of Object.entries(state.nodes)) {
    const exists = netnsExists(ns);
    let addrs: string[] = [];
    if (exists) {
      const r = await exec('ip', ['-n', ns, '-br', '-4', 'addr', 'show'], { allowFailure: true });
      addrs = r.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 3 && f[0] !== 'lo')
        .map((f) => `${(f[0] ?? '').split('@')[0]} ${f.slice(2).join(' ')}`);
    }
    nodes.push({ node, ns, exists, addrs, pids: exists ? netnsPids(ns) : [] });
  }
  const processes = state.processes.map((p) => ({
    name: p.name,
    node: p.node,
    pid: p.pid,
    alive: p.pid > 0 && isAlive(p.pid),
    log: p.log,
  }));
  const tunnels: TunnelSummary[] = [];
  for (const p of processes) if (p.name.startsWith('agent-') && p.alive) tunnels.push(await tunnelSummary(state, p.node));
  return { dir, prefix: state.prefix, wiring: state.wiring, phase: state.phase, nodes, processes, tunnels };
}

// --- the `connector lab` subcommands ---

function out(line: string): void {
  process.stdout.write(line + '\n');
}

const dirOf = (dir: string | undefined): string => resolve(dir ?? DEFAULT_LAB_DIR);

export async function up(o: {
  dir?: string | undefined;
  wiring: string;
  headend: boolean;
  agents: boolean;
  certLifetimeS?: number | undefined;
  slowCore?: number | undefined;
  wan?: WanProfile | undefined;
  natUdpTimeoutS?: number | undefined;
}): Promise<number> {
  const wiring = o.wiring as Wiring;
  if (!WIRINGS.includes(wiring)) throw new UsageError(`--wiring must be one of ${WIRINGS.join(', ')}, not "${o.wiring}"`);
  const dir = dirOf(o.dir);
  const started = Date.now();
  const state = await labUp({
    dir,
    wiring,
    headend: o.headend,
    agents: o.agents,
    ...(o.certLifetimeS !== undefined ? { certLifetimeS: o.certLifetimeS } : {}),
    ...(o.slowCore !== undefined ? { slowCore: o.slowCore } : {}),
    ...(o.wan ? { wan: o.wan } : {}),
    ...(o.natUdpTimeoutS !== undefined ? { natUdpTimeoutS: o.natUdpTimeoutS } : {}),
    progress: (l) => out(`lab: ${l}`),
  });
  out(`lab: up in ${((Date.now() - started) / 1000).toFixed(1)} s, prefix ${state.prefix}, ${wiring} wiring, files in ${dir}\n`);
  const plan = planLab(state.wiring, planOptions(state));
  const width = Math.max(...plan.nodes.map((n) => n.name.length));
  out('nodes:');
  for (const n of plan.nodes) out(`  ${n.name.padEnd(width)}  ${n.description}`);
  const procs = state.processes.filter((x) => x.pid > 0);
  if (procs.length > 0) {
    out('\nprocesses:');
    for (const x of procs) out(`  ${x.name.padEnd(width)}  pid ${x.pid} in ${x.node}, log ${x.log}`);
  }
  out('\ntry:');
  for (const h of labHints(dir)) out(`  ${h}`);
  if ((await checkTools(['ping'])).length > 0) out('  (ping is not installed on this host: apt-get install iputils-ping)');
  return 0;
}

export async function down(o: { dir?: string | undefined; prefix?: string | undefined }): Promise<number> {
  const r = await labDown(dirOf(o.dir), o.prefix);
  if (r.killed.length > 0) out(`lab: stopped ${r.killed.join(', ')}`);
  out(`lab: removed ${r.namespaces.length} namespaces (${r.prefix}-*)`);
  return 0;
}

export async function status(o: { dir?: string | undefined; json: boolean }): Promise<number> {
  const s = await labStatus(dirOf(o.dir));
  if (o.json) out(JSON.stringify(s, null, 2));
  else for (const l of statusLines(s)) out(l);
  return 0;
}

export async function restart(o: { dir?: string | undefined; name: string }): Promise<number> {
  const dir = dirOf(o.dir);
  const state = readLabState(dir);
  if (!state.processes.some((x) => x.name === o.name)) {
    throw new UsageError(`no process "${o.name}" in this lab; processes: ${state.processes.map((x) => x.name).join(', ')}`);
  }
  await stopLabProcess(state, o.name, 'SIGTERM', 3_000);
  const next = startLabProcess(readLabState(dir), o.name);
  const x = next.processes.find((q) => q.name === o.name);
  out(`lab: ${o.name} restarted, pid ${x?.pid ?? '?'}, log ${x?.log ?? '?'}`);
  return 0;
}

/** Runs CMD in NODE's namespace with the caller's terminal; the exit code is CMD's. */
export function execIn(o: { dir?: string | undefined; node: string; cmd: readonly string[] }): Promise<number> {
  return execInNetnsInteractive(nodeNs(readLabState(dirOf(o.dir)), o.node), o.cmd);
}
