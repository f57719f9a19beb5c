// SPDX-License-Identifier: UNLICENSED
// A whole lab for a test or a describe block: unique prefix and temp dir, torn down in after() and on
// process exit even when the test fails. Traffic helpers run inside the lab's namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchStatus } from '../../src/agent/adapters/status-socket.js';
import { exec, type ExecOptions, type ExecResult } from '../../src/shared/exec.js';
import { labDown, labUp } from '../../src/lab/main.js';
import type { WanProfile } from '../../src/lab/core/wan.js';
import { startLabProcess, stopLabProcess } from '../../src/lab/adapters/processes.js';
import { removeNetnsWithPrefix } from '../../src/lab/adapters/netns.js';
import { removeCpuGroups } from '../../src/lab/adapters/cpu-limit.js';
import { PY_GARP, PY_PING, PY_TCP_RECV, PY_TCP_SEND } from '../../src/lab/core/py-tools.js';
import { projectRoot } from '../../src/lab/adapters/programs.js';
import { nodeNs, readLabState, type LabState } from '../../src/lab/adapters/state.js';
import { SITE, type TenantId, type Wiring } from '../../src/lab/core/topology.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = projectRoot();

/** Why lab tests cannot run here, or undefined when they can. */
export function labSkipReason(o: { headend?: boolean; agents?: boolean } = {}): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'lab tests need root (network namespaces)';
  for (const tool of ['ip', 'nft', 'python3', 'tcpdump']) {
    if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, tool))) && !hasOnPath(tool)) {
      return `lab tests need ${tool}`;
    }
  }
  if (o.headend && !existsSync(join(ROOT, 'src/headend'))) return 'headend (src/headend) not implemented yet';
  if (o.agents && !existsSync(join(ROOT, 'src/agent/main.ts'))) return 'agent run command (src/agent/main.ts) not implemented yet';
  return undefined;
}

function hasOnPath(tool: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(join(d, tool)));
}

export interface PingResult {
  sent: number;
  received: number;
  rttMs: number[];
  errors: string[];
  ipBytes: number;
}

export interface PingOptions {
  count?: number;
  /** ICMP payload bytes; IP packet = size + 28. */
  size?: number;
  df?: boolean;
  intervalS?: number;
  timeoutS?: number;
  /** Payload pattern (hex), used to tell tenants' traffic apart in captures. */
  pattern?: string;
}

export interface Capture {
  file: string;
  /** Stops tcpdump and returns the path of the pcap. */
  stop(): Promise<string>;
}

export interface LabHandle {
  dir: string;
  prefix: string;
  state(): LabState;
  ns(node: string): string;
  run(node: string, cmd: string, args: readonly string[], o?: ExecOptions): Promise<ExecResult>;
  py<T>(node: string, script: string, args: readonly (string | number)[], timeoutMs?: number): Promise<T>;
  ping(node: string, dst: string, o?: PingOptions): Promise<PingResult>;
  /** Pings once per 200 ms until a reply; resolves with the milliseconds it took, or rejects at timeout. */
  waitPing(node: string, dst: string, timeoutMs: number): Promise<number>;
  capture(node: string, iface: string, filter: string): Promise<Capture>;
  garp(node: string, iface: string, mac: string, ip: string, count?: number): Promise<void>;
  tcpTransfer(
    from: string,
    to: string,
    toAddr: string,
    bytes: number,
  ): Promise<{ sent: { bytes: number; sha256: string; seconds: number }; received: { bytes: number; sha256: string } }>;
  agentStatus(tenant: TenantId): Promise<Record<string, unknown>>;
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  start(name: string): void;
  down(): Promise<void>;
}

/**
 * Brings up a lab. Pass the test context to tear it down after that test; in a describe block pass
 * undefined from before() and call down() from after() (hooks registered inside a hook run too early).
 */
export async function openLab(
  hooks: { after(fn: () => unknown): void } | undefined,
  o: {
    wiring?: Wiring;
    headend?: boolean;
    agents?: boolean;
    certLifetimeS?: number;
    slowCore?: number;
    /** A WAN between isp and dc (the delay line). */
    wan?: WanProfile;
    natUdpTimeoutS?: number;
  } = {},
): Promise<LabHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'ck-lab-'));
  let prefix = '';
  const children = new Set<ChildProcess>();
  const emergency = (): void => {
    for (const c of children) c.kill('SIGKILL');
    if (prefix) removeNetnsWithPrefix(`${prefix}-`);
    if (prefix) removeCpuGroups(`${prefix}-`);
  };
  process.once('exit', emergency);
  const down = async (): Promise<void> => {
    for (const c of children) c.kill('SIGKILL');
    children.clear();
    await labDown(dir).catch(() => undefined);
    if (prefix) removeNetnsWithPrefix(`${prefix}-`);
    process.removeListener('exit', emergency);
    if (!process.env['CK_LAB_KEEP_DIR']) rmSync(dir, { recursive: true, force: true });
  };
  hooks?.after(down);
  const state = await labUp({
    dir,
    ...(o.wiring ? { wiring: o.wiring } : {}),
    headend: o.headend ?? false,
    agents: o.agents ?? false,
    ...(o.certLifetimeS !== undefined ? { certLifetimeS: o.certLifetimeS } : {}),
    ...(o.slowCore !== undefined ? { slowCore: o.slowCore } : {}),
    ...(o.wan ? { wan: o.wan } : {}),
    ...(o.natUdpTimeoutS !== undefined ? { natUdpTimeoutS: o.natUdpTimeoutS } : {}),
  });
  prefix = state.prefix;

  const ns = (node: string): string => nodeNs(readLabState(dir), node);
  const run = (node: string, cmd: string, args: readonly string[], eo?: ExecOptions): Promise<ExecResult> =>
    exec('ip', ['netns', 'exec', ns(node), cmd, ...args], eo);
  const py = async <T>(node: string, script: string, args: readonly (string | number)[], timeoutMs = 60_000): Promise<T> => {
    const r = await run(node, 'python3', ['-c', script, ...args.map(String)], { timeoutMs });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as T;
  };
  const ping = (node: string, dst: string, p: PingOptions = {}): Promise<PingResult> =>
    py<PingResult>(node, PY_PING, [dst, p.count ?? 3, p.size ?? 56, p.df ? 1 : 0, p.intervalS ?? 0.2, p.timeoutS ?? 1, p.pattern ?? 'ab']);

  const handle: LabHandle = {
    dir,
    prefix,
    state: () => readLabState(dir),
    ns,
    run,
    py,
    ping,
    async waitPing(node, dst, timeoutMs) {
      const t0 = Date.now();
      while (Date.now() - t0 < timeoutMs) {
        const r = await ping(node, dst, { count: 1, timeoutS: 0.2 });
        if (r.received > 0) return Date.now() - t0;
        if (r.errors.length > 0) await sleep(200); // unreachable fails at once; do not spin
      }
      throw new Error(`${node} -> ${dst}: no reply within ${timeoutMs} ms`);
    },
    async capture(node, iface, filter) {
      const file = join(dir, `cap-${node}-${iface}-${Date.now()}-${children.size}.pcap`);
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns(node),
          'tcpdump',
          '-Z',
          'root',
          '--immediate-mode',
          '-i',
          iface,
          '-n',
          '-U',
          '-s',
          '256',
          '-w',
          file,
          ...(filter ? [filter] : []),
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      children.add(child);
      await new Promise<void>((res, rej) => {
        let err = '';
        const timer = setTimeout(() => rej(new Error(`tcpdump in ${node}/${iface} did not start: ${err}`)), 5_000);
        child.stderr?.on('data', (b: Buffer) => {
          err += b.toString();
          if (err.includes('listening on')) {
            clearTimeout(timer);
            res();
          }
        });
        child.on('exit', () => {
          clearTimeout(timer);
          rej(new Error(`tcpdump in ${node}/${iface} exited: ${err}`));
        });
      });
      return {
        file,
        async stop() {
          if (child.exitCode === null) {
            const closed = new Promise((r) => child.once('close', r));
            child.kill('SIGINT');
            await closed;
          }
          children.delete(child);
          return file;
        },
      };
    },
    async garp(node, iface, mac, ip, count = 1) {
      await py(node, PY_GARP, [iface, mac, ip, count, 0.2]);
    },
    async tcpTransfer(from, to, toAddr, bytes) {
      const port = 5001;
      const recv = spawn('ip', ['netns', 'exec', ns(to), 'python3', '-c', PY_TCP_RECV, toAddr, String(port)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(recv);
      const lines: string[] = [];
      let buf = '';
      const listening = new Promise<void>((res, rej) => {
        recv.stdout?.on('data', (b: Buffer) => {
          buf += b.toString();
          const parts = buf.split('\n');
          buf = parts.pop() ?? '';
          for (const l of parts) {
            lines.push(l);
            if (l.includes('listening')) res();
          }
        });
        recv.on('exit', () => rej(new Error('receiver exited before listening')));
      });
      const done = new Promise<void>((res) => recv.on('close', () => res()));
      await listening;
      const sent = await py<{ bytes: number; sha256: string; seconds: number }>(from, PY_TCP_SEND, [toAddr, port, bytes, 'lab'], 180_000);
      await done;
      children.delete(recv);
      const received = JSON.parse(lines.find((l) => l.includes('sha256')) ?? buf) as { bytes: number; sha256: string };
      return { sent, received };
    },
    async agentStatus(tenant) {
      const node = tenant === 'a' ? 'connector' : 'connector-b';
      return (await fetchStatus(readLabState(dir).files[`sock:${node}`] ?? '')) as Record<string, unknown>;
    },
    async kill(name, signal = 'SIGKILL') {
      await stopLabProcess(readLabState(dir), name, signal);
    },
    start(name) {
      startLabProcess(readLabState(dir), name);
    },
    down,
  };
  return handle;
}

/** Frames in a pcap as tcpdump prints them with link-level headers (-e), one line each. */
export async function pcapLines(file: string, filter = ''): Promise<string[]> {
  const r = await exec('tcpdump', ['-r', file, '-nn', '-e', ...(filter ? [filter] : [])], { allowFailure: true });
  return r.stdout.split('\n').filter(Boolean);
}

/** A number at a dotted path in a status document (0 when absent). */
export function num(doc: unknown, path: string): number {
  let v: unknown = doc;
  for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' ? v : 0;
}

/** A full lab (headend and both agents) for a describe block, resolved once both tenants reach their VM. */
export async function openLabWithTunnels(): Promise<LabHandle> {
  const lab = await openLab(undefined, { headend: true, agents: true });
  // The tunnels come up in the background; the first reply proves the whole path.
  await lab.waitPing('lan-host', SITE.vm.ip, 30_000);
  await lab.waitPing('lan-b', SITE.vm.ip, 30_000);
  return lab;
}

/** The MAC a node's neighbour table holds for an IP (undefined when none). */
export async function neighMac(lab: LabHandle, node: string, ip: string): Promise<string | undefined> {
  const r = await lab.run(node, 'ip', ['neigh', 'show', ip]);
  return /lladdr ([0-9a-f:]{17})/.exec(r.stdout)?.[1];
}

/**
 * A failover as the LAN sees it: the VM's address moves to `newMac` and one GARP announces it. Resolves
 * with the milliseconds until lan-host's neighbour entry follows (rejects after `timeoutMs`), after
 * `whileMoved` ran; the VM gets its own MAC back (announced) whatever happened.
 */
export async function garpMove(lab: LabHandle, newMac: string, timeoutMs: number, whileMoved?: () => Promise<void>): Promise<number> {
  await lab.ping('lan-host', SITE.vm.ip, { count: 1 });
  if ((await neighMac(lab, 'lan-host', SITE.vm.ip)) !== SITE.vm.mac)
    throw new Error('lan-host does not hold the VM on its own MAC before the move');
  await sleep(1_100); // past the kernel's neighbour locktime (1 s)
  try {
    await lab.run('vm', 'ip', ['link', 'set', 'dev', 'eth0', 'address', newMac]);
    const t0 = Date.now();
    await lab.garp('vm', 'eth0', newMac, SITE.vm.ip, 1);
    const ms = await waitFor(
      'lan-host to learn the new MAC',
      timeoutMs,
      async () => ((await neighMac(lab, 'lan-host', SITE.vm.ip)) === newMac ? Date.now() - t0 : undefined),
      20,
    );
    await whileMoved?.();
    return ms;
  } finally {
    await lab.run('vm', 'ip', ['link', 'set', 'dev', 'eth0', 'address', SITE.vm.mac]);
    await sleep(1_100);
    await lab.garp('vm', 'eth0', SITE.vm.mac, SITE.vm.ip, 1);
  }
}
