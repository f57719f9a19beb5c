// SPDX-License-Identifier: UNLICENSED
// What `connector lab` prints: an agent's status document boiled down to its tunnel, the status of the
// whole lab, and the commands worth trying after `lab up`. Pure: documents in, text out.
import type { Wiring } from './topology.js';

export const DEFAULT_LAB_DIR = '/tmp/connector-lab';

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

/** The parts of `connector-agent status --json` the lab shows. */
export function tunnelSummaryOf(node: string, status: unknown): TunnelSummary {
  const doc = (status ?? {}) as {
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
  phase: 'building' | 'up';
  nodes: NodeStatus[];
  processes: { name: string; node: string; pid: number; alive: boolean; log: string }[];
  tunnels: TunnelSummary[];
}

export function statusLines(s: LabStatusReport): string[] {
  const lines = [`lab ${s.prefix} (${s.wiring}, ${s.phase}) in ${s.dir}`];
  const width = Math.max(...s.nodes.map((n) => n.node.length));
  for (const n of s.nodes) {
    const state = n.exists ? n.addrs.join(', ') || '-' : 'MISSING';
    lines.push(`  ${n.node.padEnd(width)}  ${state}${n.pids.length ? `  pids ${n.pids.join(' ')}` : ''}`);
  }
  for (const x of s.processes) {
    lines.push(
      `  ${x.name.padEnd(width)}  ${x.alive ? `running, pid ${x.pid}` : x.pid > 0 ? `EXITED (pid ${x.pid})` : 'not started'}  log ${x.log}`,
    );
  }
  for (const t of s.tunnels) {
    const rtt = t.rttMs !== undefined ? `, RTT ${t.rttMs.toFixed(2)} ms` : '';
    const alarms =
      t.activeAlarms > 0
        ? `, ${t.activeAlarms} ACTIVE ALARM(S) (see connector-agent status --config ${s.dir}/${t.node}/connector.uci)`
        : '';
    const id = t.identity ? `, identity ${t.identity}${t.identity !== 'ready' && t.identityReason ? ` (${t.identityReason})` : ''}` : '';
    lines.push(
      `  tunnel of ${t.node}: ${t.state}${t.vni !== undefined ? `, VNI ${t.vni}` : ''}${rtt}${id}${alarms}${t.error ? ` (${t.error})` : ''}`,
    );
  }
  return lines;
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
