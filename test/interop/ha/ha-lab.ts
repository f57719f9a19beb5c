// SPDX-License-Identifier: UNLICENSED
// Two headends on two "hosts" serving one registry, in namespaces (root): a switch namespace `sw` joins
// the site (the real agent with its TAP on the LAN bridge), headend hosts `ha` and `hb` (each its own
// address, audit log and metrics) and a hypervisor `hv` whose kernel VXLAN VTEP floods to both headends
// and learns. The LAN host and the VM share one subnet. Not a test file; cleanup goes through t.after.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { startFrr, type FrrNode } from './frr.js';
import { kernelVtepFlood, netnsScope, type NetnsScope } from '../../helpers/netns.js';
import { REPO, headendConfigDoc, spawnHeadend, writeJson, type HeadendProcess } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir, type TempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

export const VNI = 100;
export const SERIAL = 'CN-0001';
export const LAN_HOST = { mac: '02:00:00:00:01:14', ip: '192.168.1.20' };
export const VM = { mac: '02:00:00:00:01:32', ip: '192.168.1.50' };
const SITE_IP = '10.97.0.2';
const HV_IP = '10.97.0.20';
export const HEADEND_IPS = { a: '10.97.0.11', b: '10.97.0.12' } as const;
export type HeadendName = keyof typeof HEADEND_IPS;

export interface HaHeadend {
  name: HeadendName;
  ns: string;
  ip: string;
  /** The host's link into the switch (cut it to fail the host). */
  ifname: string;
  auditLog: string;
  config: string;
  proc: HeadendProcess | null;
}

export interface HaLab {
  scope: NetnsScope;
  d: TempDir;
  headends: Record<HeadendName, HaHeadend>;
  lanNs: string;
  lanIf: string;
  vmNs: string;
  vmIf: string;
  hvNs: string;
  /** The agent's JSON log lines so far. */
  agentLines(): Record<string, unknown>[];
  start(name: HeadendName): Promise<HeadendProcess>;
  kill(name: HeadendName): Promise<void>;
  /** Kills the site's agent (the site is gone). */
  stopAgent(): Promise<void>;
  /** The headend the agent's last `tunnel up` names. */
  active(): HeadendName | null;
  children: ChildProcess[];
  /** FRR per namespace (fabric 'evpn'). */
  frr: Record<string, FrrNode>;
}

export interface HaLabOptions {
  /** The `registry` value of both headends' configs, given the hypervisor VTEP's address (file path or { postgres }). */
  registry: (doc: unknown, d: TempDir) => Promise<unknown>;
  /**
   * 'flood' (default): the hypervisor's VTEP floods to both headends and learns. 'evpn': FRR on both
   * headend hosts and the hypervisor; the headends publish their session MACs on a bridge port for zebra
   * (headend `evpn.port`), the hypervisor's VTEP learns nothing by itself: MACs and flood list come by BGP.
   */
  fabric?: 'flood' | 'evpn';
  /** Extra `option` lines of the agent's UCI (dead-peer timers). */
  agentOptions?: Record<string, string>;
}

export function registryDocument(vtep: string): unknown {
  return {
    version: 1,
    tenants: { acme: { segments: { lan: { vni: VNI, vteps: [vtep] } } } },
    devices: { [SERIAL]: { state: 'claimed', tenant: 'acme', segment: 'lan', updatedAt: '2026-01-01T00:00:00Z' } },
  };
}

export async function haLab(t: TestContext, o: HaLabOptions): Promise<HaLab> {
  const scope = netnsScope(t, 'ckh');
  const d = tempDir(t, 'ck-ha-', true);
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    scope.cleanup();
    if (process.env['CK_KEEP'] !== '1') d.remove();
  });
  const [sw, site, ha, hb, hv, lan, vm] = (await Promise.all(['sw', 'site', 'ha', 'hb', 'hv', 'lan', 'vm'].map((r) => scope.ns(r)))) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const n = (r: string): string => scope.ifname(r);
  const link = async (a: string, an: string, b: string, bn: string, mtu = '1600'): Promise<void> => {
    await ipIn(a, 'link', 'add', an, 'type', 'veth', 'peer', 'name', bn, 'netns', b);
    for (const [ns, dev] of [
      [a, an],
      [b, bn],
    ] as const) {
      await ipIn(ns, 'link', 'set', dev, 'mtu', mtu);
      await ipIn(ns, 'link', 'set', dev, 'up');
    }
  };
  await ipIn(sw, 'link', 'add', 'br0', 'type', 'bridge');
  await ipIn(sw, 'link', 'set', 'br0', 'up');
  const onSwitch = async (ns: string, role: string, cidr: string): Promise<string> => {
    await link(ns, n(`${role}s`), sw, n(`s${role}`));
    await ipIn(sw, 'link', 'set', n(`s${role}`), 'master', 'br0');
    await ipIn(ns, 'addr', 'add', cidr, 'dev', n(`${role}s`));
    return n(`${role}s`);
  };
  await onSwitch(site, 'st', `${SITE_IP}/24`);
  const haIf = await onSwitch(ha, 'ha', `${HEADEND_IPS.a}/24`);
  const hbIf = await onSwitch(hb, 'hb', `${HEADEND_IPS.b}/24`);
  const hvIf = await onSwitch(hv, 'hv', `${HV_IP}/24`);

  // The site's LAN: a bridge with the LAN host on it (the agent's TAP joins it).
  await ipIn(site, 'link', 'add', 'br0', 'type', 'bridge');
  await ipIn(site, 'link', 'set', 'br0', 'up');
  await link(lan, n('le'), site, n('lp'), '1500');
  await ipIn(site, 'link', 'set', n('lp'), 'master', 'br0');
  await ipIn(lan, 'link', 'set', n('le'), 'address', LAN_HOST.mac);
  await ipIn(lan, 'addr', 'add', `${LAN_HOST.ip}/24`, 'dev', n('le'));

  // The hypervisor: one VTEP flooding to both headends (or told by EVPN), the VM behind it.
  const frr: Record<string, FrrNode> = {};
  if (o.fabric === 'evpn') {
    const all = [HV_IP, HEADEND_IPS.a, HEADEND_IPS.b];
    await evpnVtep(hv, HV_IP, hvIf, 4789);
    // The headend owns UDP 4789 on its host; the host's vxlan device only names the VNI and VTEP for
    // zebra (its socket on another port never receives), the session MACs sit on the veth `ev<vni>`.
    for (const [ns, ip, dev] of [
      [ha, HEADEND_IPS.a, haIf],
      [hb, HEADEND_IPS.b, hbIf],
    ] as const) {
      await evpnVtep(ns, ip, dev, 4791);
      await ipIn(ns, 'link', 'add', `ev${VNI}`, 'type', 'veth', 'peer', 'name', `evp${VNI}`);
      await ipIn(ns, 'link', 'set', `evp${VNI}`, 'up');
      await ipIn(ns, 'link', 'set', `ev${VNI}`, 'master', `br${VNI}`, 'up');
      await nsExec(ns, 'bridge', ['link', 'set', 'dev', `ev${VNI}`, 'learning', 'off']);
    }
    for (const [ns, ip] of [
      [hv, HV_IP],
      [ha, HEADEND_IPS.a],
      [hb, HEADEND_IPS.b],
    ] as const) {
      frr[ns] = await startFrr(t, { ns, ip, peers: all.filter((p) => p !== ip) });
    }
  } else {
    await kernelVtepFlood(hv, { vni: VNI, local: HV_IP, remotes: [HEADEND_IPS.a, HEADEND_IPS.b], dev: hvIf });
  }
  await link(hv, n('vh'), vm, n('ve'), '1500');
  await ipIn(hv, 'link', 'set', n('vh'), 'master', `br${VNI}`);
  await ipIn(vm, 'link', 'set', n('ve'), 'address', VM.mac);
  await ipIn(vm, 'addr', 'add', `${VM.ip}/24`, 'dev', n('ve'));

  const pki = await createTestPki(d.dir, { serverIps: [HEADEND_IPS.a, HEADEND_IPS.b] });
  const dev = await pki.client(SERIAL);
  const registry = await o.registry(registryDocument(HV_IP), d);
  const headends = {} as Record<HeadendName, HaHeadend>;
  for (const [name, ns, ifname] of [
    ['a', ha, haIf],
    ['b', hb, hbIf],
  ] as const) {
    const ip = HEADEND_IPS[name];
    const config = d.path(`headend-${name}.json`);
    const auditLog = d.path(`audit-${name}.jsonl`);
    writeJson(config, {
      ...headendConfigDoc(d, pki, {
        listenHost: ip,
        listenPort: 8443,
        vxlanAddress: ip,
        vxlanPort: 4789,
        vtepPort: 4789,
        metricsPort: 9100,
      }),
      registry,
      auditLog,
      instance: `dc-${name}`,
      ...(o.fabric === 'evpn' ? { evpn: { port: 'ev{vni}' } } : {}),
    });
    headends[name] = { name, ns, ip, ifname, auditLog, config, proc: null };
  }

  const idDir = d.path('identity');
  mkdirSync(idDir, { recursive: true });
  copyFileSync(dev.keyFile, join(idDir, 'op.key.pem'));
  copyFileSync(dev.certFile, join(idDir, 'op.cert.pem'));
  copyFileSync(pki.dcCa.file, join(idDir, 'dc-ca.pem'));
  const agentConf = d.path('connector.uci');
  writeFileSync(
    agentConf,
    [
      "config agent 'agent'",
      `\tlist headend 'tls://${HEADEND_IPS.a}:8443'`,
      `\tlist headend 'tls://${HEADEND_IPS.b}:8443'`,
      "\toption bridge 'br0'",
      `\toption tap_name '${n('tap')}'`,
      `\toption identity_dir '${idDir}'`,
      `\toption status_socket '${d.path('agent.sock')}'`,
      "\toption log_format 'json'",
      ...Object.entries(o.agentOptions ?? {}).map(([k, v]) => `\toption ${k} '${v}'`),
      '',
    ].join('\n'),
  );

  const start = async (name: HeadendName): Promise<HeadendProcess> => {
    const h = headends[name];
    const proc = await spawnHeadend(h.config, h.ns);
    children.push(proc.child);
    h.proc = proc;
    return proc;
  };
  const kill = async (name: HeadendName): Promise<void> => {
    const h = headends[name];
    const c = h.proc?.child;
    h.proc = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    // `ip netns exec` execs node, so the child's pid is the headend's: this is a kill -9 of the headend.
    c.kill('SIGKILL');
    await exited;
  };
  await Promise.all([start('a'), start('b')]);

  const lines: Record<string, unknown>[] = [];
  let buf = '';
  const agent = spawn(
    'ip',
    ['netns', 'exec', site, process.execPath, '--import', 'tsx', join(REPO, 'src/agent/cli.ts'), 'run', '--config', agentConf],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(agent);
  const onData = (b: Buffer): void => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
  };
  agent.stdout.on('data', onData);
  agent.stderr.on('data', onData);
  const active = (): HeadendName | null => {
    for (let i = lines.length - 1; i >= 0; i--) {
      const l = lines[i];
      if (l?.['msg'] !== 'tunnel up') continue;
      const host = String(l['headend']);
      return host.startsWith(`${HEADEND_IPS.a}:`) ? 'a' : host.startsWith(`${HEADEND_IPS.b}:`) ? 'b' : null;
    }
    return null;
  };
  await waitFor(`the agent's tunnel up (agent: ${JSON.stringify(lines.slice(-10))})`, 30_000, () => active() ?? undefined);
  return {
    scope,
    d,
    headends,
    lanNs: lan,
    lanIf: n('le'),
    vmNs: vm,
    vmIf: n('ve'),
    hvNs: hv,
    agentLines: () => lines,
    start,
    kill,
    active,
    children,
    frr,
    stopAgent: async () => {
      if (agent.exitCode !== null || agent.signalCode !== null) return;
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGKILL');
      await exited;
    },
  };
}

/** An EVPN VTEP: bridge `br<vni>` with a vxlan device that neither learns nor floods by itself (zebra fills it). */
async function evpnVtep(ns: string, local: string, dev: string, dstport: number): Promise<void> {
  await ipIn(ns, 'link', 'add', `br${VNI}`, 'type', 'bridge');
  await ipIn(
    ns,
    'link',
    'add',
    `vx${VNI}`,
    'type',
    'vxlan',
    'id',
    String(VNI),
    'local',
    local,
    'dstport',
    String(dstport),
    'dev',
    dev,
    'nolearning',
  );
  await ipIn(ns, 'link', 'set', `vx${VNI}`, 'mtu', '1500', 'master', `br${VNI}`, 'up');
  await nsExec(ns, 'bridge', ['link', 'set', 'dev', `vx${VNI}`, 'learning', 'off']);
  await ipIn(ns, 'link', 'set', `br${VNI}`, 'up');
}

/** `ping -D -i 0.05` from `ns` to `ip`: the reply times (s, wall clock) as they arrive. */
export function pinger(ns: string, ip: string, children: ChildProcess[]): { replies: number[]; stop(): Promise<void> } {
  const replies: number[] = [];
  const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', '-D', '-i', '0.05', '-W', '1', ip], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(p);
  let buf = '';
  p.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (m) replies.push(Number(m[1]));
    }
  });
  return {
    replies,
    async stop() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
    },
  };
}

/** The longest silence between replies from the last reply before `atS` (the failure) on, in ms. */
export function gapAfter(replies: readonly number[], atS: number): number {
  let prev = -Infinity;
  let gap = 0;
  for (const r of replies) {
    if (r <= atS) prev = r;
    else {
      gap = Math.max(gap, r - prev);
      prev = r;
    }
  }
  return gap === 0 ? Infinity : Math.round(gap * 1000);
}
