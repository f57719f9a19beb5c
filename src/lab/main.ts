// SPDX-License-Identifier: UNLICENSED
// `connector lab up|down|status|exec`: builds the network lab in namespaces, writes its PKI, registry and
// configs, provisions each Connector's factory block, starts the EST server, the headend and the agents
// (which enroll for their identity before their tunnel), and takes everything down again from any state.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchStatus } from '../agent/adapters/status-socket.js';
import { ConnectorError, errorMessage } from '../shared/errors.js';
import { exec } from '../shared/exec.js';
import { writeRegistryFile } from '../shared/registry/registry-file.js';
import { buildLab, checkTools, type Progress } from './adapters/build.js';
import { agentUci, estConfig, estUrl, headendConfig, LAB_EST_TIMERS, LAB_SERIALS, labRegistry } from './core/configs.js';
import { isAlive, netnsExists, netnsPids, removeNetnsWithPrefix, spawnInNetns, uniquePrefix } from './adapters/netns.js';
import { writeLabPki, type DeviceSpec } from './adapters/pki.js';
import { programCommand } from './adapters/programs.js';
import { readLabState, removeLabState, tryReadLabState, writeLabState, type LabProcess, type LabState } from './adapters/state.js';
import { DC, nsName, planLab, type LabPlan, type TenantId, type Wiring } from './core/topology.js';
import { provisionLabUnit, registerLabUnit } from './adapters/units.js';
import { silentLogger } from '../shared/log.js';

export const REQUIRED_TOOLS = ['ip', 'nft', 'sysctl', 'ss', 'python3'] as const;
export const DEFAULT_LAB_DIR = '/tmp/connector-lab';
const METRICS_PORT = 9105;

export interface LabUpOptions {
  dir: string;
  wiring?: Wiring;
  /** Start the headend in `dc` (default true). */
  headend?: boolean;
  /** Start an agent in each connector namespace (default true; needs the headend). */
  agents?: boolean;
  /** Lifetime of the operational certificates the lab's EST server issues, s (default one day). */
  certLifetimeS?: number;
  /** Namespace prefix; default a fresh unique one. */
  prefix?: string;
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

/** Namespace of a node, with a helpful error listing the nodes when the name is wrong. */
export function nodeNs(state: LabState, node: string): string {
  const ns = state.nodes[node];
  if (!ns) throw labError(`no node "${node}" in this lab; nodes: ${Object.keys(state.nodes).join(', ')}`);
  return ns;
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts (or restarts) a process recorded in the state; returns the updated state, already saved. */
export function startLabProcess(state: LabState, name: string): LabState {
  const p = state.processes.find((x) => x.name === name);
  if (!p) throw labError(`no process "${name}" in this lab; processes: ${state.processes.map((x) => x.name).join(', ')}`);
  if (p.pid > 0 && isAlive(p.pid)) return state;
  const [cmd, ...args] = p.cmd;
  if (cmd === undefined) throw labError(`process "${name}" has no command`);
  writeFileSync(p.log, `--- ${new Date().toISOString()} start ${name}\n`, { flag: 'a' });
  const pid = spawnInNetns(nodeNs(state, p.node), cmd, args, { logFile: p.log, cwd: p.cwd });
  const next = { ...state, processes: state.processes.map((x) => (x.name === name ? { ...x, pid } : x)) };
  writeLabState(next);
  return next;
}

/** Signals a lab process and waits (up to timeoutMs) for it to exit; SIGKILL is the fault-test tool. */
export async function stopLabProcess(state: LabState, name: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000): Promise<void> {
  const p = state.processes.find((x) => x.name === name);
  if (!p || p.pid <= 0) return;
  try {
    process.kill(p.pid, signal);
  } catch {
    return;
  }
  const until = Date.now() + timeoutMs;
  while (isAlive(p.pid) && Date.now() < until) await sleep(50);
  if (isAlive(p.pid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

async function listening(ns: string, port: number): Promise<boolean> {
  const r = await exec('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { allowFailure: true });
  return r.stdout.trim() !== '';
}

async function waitListening(state: LabState, p: LabProcess, port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const ns = nodeNs(state, p.node);
  while (Date.now() < until) {
    if (!isAlive(p.pid)) throw labError(`the ${p.name} exited during start-up; its log (${p.log}) ends with:\n${tail(p.log)}`);
    if (await listening(ns, port)) return;
    await sleep(100);
  }
  throw labError(`the ${p.name} did not listen on port ${port} within ${timeoutMs / 1000} s; log ${p.log}:\n${tail(p.log)}`);
}

export interface TunnelSummary {
  node: string;
  state: string;
  vni?: number;
  rttMs?: number;
  activeAlarms: number;
  /** Enrollment state of the agent's identity (ready, waiting-for-claim, refused, ...) and why. */
  identity?: string;
  identityReason?: string;
  error?: string;
}

/** What the agent in a connector node says about its tunnel (through its status socket). */
export async function tunnelSummary(state: LabState, node: string, timeoutMs = 1_000): Promise<TunnelSummary> {
  const sock = state.files[`sock:${node}`];
  if (!sock) return { node, state: 'unknown', activeAlarms: 0, error: 'no status socket recorded' };
  try {
    const doc = (await fetchStatus(sock, timeoutMs)) as {
      tunnel?: { state?: unknown; vni?: unknown; rttMs?: unknown };
      alarms?: { active?: readonly unknown[] };
      identity?: { state?: unknown; reason?: unknown };
    };
    const t = doc.tunnel ?? {};
    const id = doc.identity ?? {};
    return {
      node,
      // No tunnel yet: the agent is still getting its identity.
      state: typeof t.state === 'string' ? t.state : doc.tunnel ? 'unknown' : 'no-tunnel',
      ...(typeof id.state === 'string' ? { identity: id.state } : {}),
      ...(typeof id.reason === 'string' ? { identityReason: id.reason } : {}),
      ...(typeof t.vni === 'number' ? { vni: t.vni } : {}),
      ...(typeof t.rttMs === 'number' ? { rttMs: t.rttMs } : {}),
      activeAlarms: doc.alarms?.active?.length ?? 0,
    };
  } catch (e) {
    return { node, state: 'unreachable', activeAlarms: 0, error: errorMessage(e) };
  }
}

function agentProcessName(t: TenantId): string {
  return `agent-${t}`;
}

/** Top-level entries of a lab directory that `lab up` creates. */
const LAB_GENERATED = ['pki', 'factory', 'dc', 'connector', 'connector-b', 'registry.json', 'registry.json.lock'];

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
  const plan: LabPlan = planLab(o.wiring ?? 'one-port');
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
  };
  // Saved before anything exists: a crash from here on leaves enough behind for `lab down`.
  writeLabState(state);
  try {
    await buildLab(prefix, plan, progress);

    progress('generating the lab PKI (DC CA, device CA, factory CA, headend and EST server certificates)');
    const devices: DeviceSpec[] = [
      { serial: LAB_SERIALS.expired, issuer: 'device-ca', expired: true },
      { serial: LAB_SERIALS.denied, issuer: 'device-ca' },
      { serial: LAB_SERIALS.rogue, issuer: 'rogue-ca' },
      { serial: LAB_SERIALS.spare, issuer: 'device-ca' },
    ];
    const pki = await writeLabPki(join(o.dir, 'pki'), {
      now,
      headendIps: [plan.headend.publicAddr],
      headendDns: ['headend.lab.example'],
      estIps: [plan.headend.publicAddr],
      estDns: ['est.lab.example'],
      devices,
    });

    const dcDir = join(o.dir, 'dc');
    mkdirSync(dcDir, { recursive: true });
    const registry = join(dcDir, 'registry.json');
    writeRegistryFile(registry, labRegistry(now));
    const headendJson = join(dcDir, 'headend.json');
    const heCfg = headendConfig(
      plan,
      { cert: pki.headendCert, key: pki.headendKey, deviceCa: pki.deviceCa, registry, auditLog: join(dcDir, 'audit.jsonl') },
      METRICS_PORT,
    );
    writeFileSync(headendJson, JSON.stringify(heCfg, null, 2) + '\n');
    const estJson = join(dcDir, 'est.json');
    const issuanceLog = join(dcDir, 'est-issued.jsonl');
    const est = estConfig(
      plan,
      {
        cert: pki.estCert,
        key: pki.estKey,
        factoryCas: [pki.factoryCa],
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
      factoryCaDir: pki.factoryCaDir,
      rogueFactoryCaDir: pki.rogueFactoryCaDir,
      manifestDir,
      headendMetrics: `127.0.0.1:${METRICS_PORT}`,
    };
    for (const [serial, pair] of Object.entries(pki.devices)) {
      files[`cert:${serial}`] = pair.cert;
      files[`key:${serial}`] = pair.key;
    }

    const connector = programCommand('connector');
    const agentCmd = programCommand('connector-agent');
    const processes: LabProcess[] = [
      {
        name: 'est',
        node: plan.headend.node,
        pid: 0,
        cmd: [connector.cmd, ...connector.args, 'enroll-server', '--config', estJson],
        cwd: connector.cwd,
        log: join(dcDir, 'est.log'),
      },
      {
        name: 'headend',
        node: plan.headend.node,
        pid: 0,
        cmd: [connector.cmd, ...connector.args, 'headend', '--config', headendJson],
        cwd: connector.cwd,
        log: join(dcDir, 'headend.log'),
      },
    ];
    for (const t of plan.tenants) {
      const nodeDir = join(o.dir, t.nodes.connector);
      const identityDir = join(nodeDir, 'identity');
      mkdirSync(identityDir, { recursive: true, mode: 0o700 });
      // Factory: a disk with nothing but the factory block. DC: allowlist import, then the tenant's claim.
      progress(`provisioning ${t.serial}: factory block in ${join(nodeDir, 'unit.img')}, allowlisted and claimed for tenant ${t.id.toUpperCase()}`);
      const unit = await provisionLabUnit({
        serial: t.serial,
        target: join(nodeDir, 'unit.img'),
        factoryCaDir: pki.factoryCaDir,
        estUrl: estUrl(plan),
        dcAnchorFile: pki.dcCa,
        manifestDir,
        now: () => now,
        // The station's warnings (one per forced check: a bare file has no partition table) are not news here.
        log: silentLogger,
      });
      await registerLabUnit(registry, unit, now, { tenant: t.id, segment: 'default', site: `lab-site-${t.id}` });
      const uci = join(nodeDir, 'connector.uci');
      const sock = join(nodeDir, 'agent.sock');
      writeFileSync(uci, agentUci(plan, `lab-site-${t.id}`, { identityDir, statusSocket: sock, factoryBlockPath: unit.target, factoryBlockOffset: unit.offset }));
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
    state = { ...state, processes, files };
    writeLabState(state);

    if (wantHeadend) {
      progress(`starting the EST server in ${nsName(prefix, plan.headend.node)} (${estUrl(plan)})`);
      state = startLabProcess(state, 'est');
      progress(`starting the headend in ${nsName(prefix, plan.headend.node)} (${plan.headend.publicAddr}:${plan.headend.port})`);
      state = startLabProcess(state, 'headend');
      const es = state.processes.find((p) => p.name === 'est');
      if (es) await waitListening(state, es, DC.estPort, 20_000);
      const he = state.processes.find((p) => p.name === 'headend');
      if (he) await waitListening(state, he, plan.headend.port, 20_000);
    }
    if (wantAgents) {
      for (const t of plan.tenants) {
        progress(`starting the agent in ${nsName(prefix, t.nodes.connector)} (tenant ${t.id.toUpperCase()}, VNI ${t.vni}): enrolls over EST, then opens its tunnel`);
        state = startLabProcess(state, agentProcessName(t.id));
      }
      // Wait for the tunnels, so that when `lab up` returns the first ping already works.
      const until = Date.now() + 20_000;
      for (const t of plan.tenants) {
        const p = state.processes.find((x) => x.name === agentProcessName(t.id));
        for (;;) {
          if (p && !isAlive(p.pid)) throw labError(`the agent of tenant ${t.id} exited during start-up; ${p.log} ends with:\n${tail(p.log)}`);
          const s = await tunnelSummary(state, t.nodes.connector, 500);
          if (s.state === 'up') {
            progress(`tunnel of tenant ${t.id.toUpperCase()} is up (VNI ${s.vni ?? '?'}${s.rttMs !== undefined ? `, RTT ${s.rttMs.toFixed(2)} ms` : ''})`);
            break;
          }
          if (Date.now() > until) {
            const why = s.identity && s.identity !== 'ready' ? `; identity ${s.identity}${s.identityReason ? `: ${s.identityReason}` : ''}` : '';
            progress(`warning: the tunnel of tenant ${t.id.toUpperCase()} is not up yet (${s.state}${why}); see ${p?.log ?? 'the agent log'}`);
            break;
          }
          await sleep(100);
        }
      }
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
  if (state) removeLabState(dir);
  return { prefix: pfx, namespaces, killed };
}

export interface NodeStatus {
  node: string;
  ns: string;
  exists: boolean;
  addrs: string[];
  pids: number[];
}

export interface LabStatusReport {
  dir: string;
  prefix: string;
  wiring: Wiring;
  phase: LabState['phase'];
  nodes: NodeStatus[];
  processes: { name: string; node: string; pid: number; alive: boolean; log: string }[];
  tunnels: TunnelSummary[];
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
  const processes = state.processes.map((p) => ({ name: p.name, node: p.node, pid: p.pid, alive: p.pid > 0 && isAlive(p.pid), log: p.log }));
  const tunnels: TunnelSummary[] = [];
  for (const p of processes) if (p.name.startsWith('agent-') && p.alive) tunnels.push(await tunnelSummary(state, p.node));
  return { dir, prefix: state.prefix, wiring: state.wiring, phase: state.phase, nodes, processes, tunnels };
}

/** What `lab up` prints after the nodes: commands worth trying first. */
export function labHints(dir: string, cli = 'npx connector'): string[] {
  const d = dir === DEFAULT_LAB_DIR ? '' : ` --dir ${dir}`;
  return [
    `${cli} lab exec${d} lan-host -- ping -c 3 192.168.10.5          # LAN host -> recovered VM through the tunnel`,
    `${cli} lab exec${d} vm -- ping -c 3 192.168.10.20               # and back`,
    `${cli} lab exec${d} lan-b -- ping -c 3 192.168.10.5             # tenant B: same addresses, its own VM`,
    `${cli} lab exec${d} lan-host -- ip neigh                        # ARP entries (answered by the Connector's proxy)`,
    `${cli} lab exec${d} hv -- tcpdump -ni fabric udp port 4789      # the VXLAN the headend sends to the kernel VTEP`,
    `${cli} lab status${d}                                           # nodes, addresses, processes, logs`,
    `${cli} registry list --registry ${dir}/dc/registry.json   # enrolled units, their state and tenant (claim, revoke)`,
    `${cli} lab down${d}                                             # remove everything`,
  ];
}
