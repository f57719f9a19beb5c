// SPDX-License-Identifier: UNLICENSED
// The bench topology, one per scenario, in throw-away namespaces (all addresses exist only inside them):
//
//   [ha] eth0 -- lan0 [ga: br0 + tunnel end] u0 == underlay veth == u0 [gb: tunnel end (+ br0)] ... [hb]
//   198.19.0.1/24                          198.18.0.1/30     198.18.0.2/30                    198.19.0.2/24
//
// In the connector scenario gb runs the headend, which re-emits frames as VXLAN/UDP to a kernel VTEP in
// a fifth namespace gv (198.18.1.0/30 fabric leg), where hb's LAN leg is bridged: the product's own path.
// With a WAN profile the underlay veth is cut in two and the delay line (native/wan) joins the halves in
// a namespace gw: ga:u0 -- wa [gw] wb -- gb:u0, so every scenario crosses the same WAN.
import { addNetns, addVeth, ipIn, nsExec, removeNetnsWithPrefix, sysctlIn } from '../../src/lab/adapters/netns.js';
import { PY_GRO_ON, PY_TX_CSUM_OFF } from '../../src/lab/core/py-tools.js';
import { prepareWanNs, startWan, type WanLine } from '../../src/lab/adapters/wan.js';
import type { WanProfile } from '../../src/lab/core/wan.js';

export const ADDR = {
  hostA: '198.19.0.1',
  hostB: '198.19.0.2',
  underA: '198.18.0.1',
  underB: '198.18.0.2',
  fabricHeadend: '198.18.1.1',
  fabricVtep: '198.18.1.2',
} as const;

export interface BenchNet {
  prefix: string;
  ns: { ha: string; ga: string; gb: string; hb: string; gv: string; gw: string };
  /** The WAN profile on the underlay, if any; `wanLine` is its running delay line once built. */
  wan?: WanProfile;
  wanLine?: WanLine;
  work?: string;
}

export function benchNet(prefix: string, wan?: WanProfile): BenchNet {
  return {
    prefix,
    ns: { ha: `${prefix}-ha`, ga: `${prefix}-ga`, gb: `${prefix}-gb`, hb: `${prefix}-hb`, gv: `${prefix}-gv`, gw: `${prefix}-gw` },
    ...(wan ? { wan } : {}),
  };
}

async function underlay(net: BenchNet): Promise<void> {
  const { ns } = net;
  if (!net.wan) {
    await addVeth({ ns: ns.ga, ifname: 'u0' }, { ns: ns.gb, ifname: 'u0' });
    return;
  }
  await addNetns(ns.gw);
  await prepareWanNs(ns.gw);
  await addVeth({ ns: ns.ga, ifname: 'u0' }, { ns: ns.gw, ifname: 'wa' });
  await addVeth({ ns: ns.gw, ifname: 'wb' }, { ns: ns.gb, ifname: 'u0' });
  await ipIn(ns.gw, 'link', 'set', 'wa', 'up');
  await ipIn(ns.gw, 'link', 'set', 'wb', 'up');
  const dir = net.work ?? '/tmp';
  net.wanLine = await startWan(ns.gw, 'wa', 'wb', net.wan, { statsPath: `${dir}/wan-stats.json`, logFile: `${dir}/wan.log` });
}

async function bridge(ns: string, ...ports: string[]): Promise<void> {
  await ipIn(ns, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0');
  for (const p of ports) await ipIn(ns, 'link', 'set', p, 'master', 'br0', 'up');
  await ipIn(ns, 'link', 'set', 'br0', 'up');
}

async function host(ns: string, addr: string, mtu: number): Promise<void> {
  await ipIn(ns, 'link', 'set', 'eth0', 'mtu', String(mtu));
  await ipIn(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
  await ipIn(ns, 'link', 'set', 'eth0', 'up');
}

/** Hosts, LAN legs and the underlay; `hbOn` says which namespace hb's LAN leg plugs into. */
export async function buildBase(net: BenchNet, o: { hostMtu: number; hbOn: 'gb' | 'gv' }): Promise<void> {
  const { ns } = net;
  for (const n of [ns.ha, ns.ga, ns.gb, ns.hb, ...(o.hbOn === 'gv' ? [ns.gv] : [])]) await addNetns(n);
  await underlay(net);
  await ipIn(ns.ga, 'addr', 'add', `${ADDR.underA}/30`, 'dev', 'u0');
  await ipIn(ns.gb, 'addr', 'add', `${ADDR.underB}/30`, 'dev', 'u0');
  await ipIn(ns.ga, 'link', 'set', 'u0', 'up');
  await ipIn(ns.gb, 'link', 'set', 'u0', 'up');
  await addVeth({ ns: ns.ha, ifname: 'eth0' }, { ns: ns.ga, ifname: 'lan0' });
  await addVeth({ ns: ns.hb, ifname: 'eth0' }, { ns: o.hbOn === 'gv' ? ns.gv : ns.gb, ifname: 'lan0' });
  await host(ns.ha, ADDR.hostA, o.hostMtu);
  await host(ns.hb, ADDR.hostB, o.hostMtu);
  for (const n of [ns.ga, ns.gb, ns.gv]) await sysctlIn(n, 'net.bridge.bridge-nf-call-iptables', '0', true);
}

export async function bridgeLan(ns: string, ...extra: string[]): Promise<void> {
  await bridge(ns, 'lan0', ...extra);
}

export async function kernelVxlan(ns: string, local: string, remote: string, dev: string, vni = 42, mtu = 1500): Promise<void> {
  await ipIn(ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', String(vni), 'local', local, 'remote', remote, 'dev', dev, 'dstport', '4789');
  await ipIn(ns, 'link', 'set', 'vx0', 'mtu', String(mtu));
}

export async function fabricLeg(net: BenchNet): Promise<void> {
  await addVeth({ ns: net.ns.gb, ifname: 'f0' }, { ns: net.ns.gv, ifname: 'f0' }, 1600);
  await ipIn(net.ns.gb, 'addr', 'add', `${ADDR.fabricHeadend}/30`, 'dev', 'f0');
  await ipIn(net.ns.gv, 'addr', 'add', `${ADDR.fabricVtep}/30`, 'dev', 'f0');
  await ipIn(net.ns.gb, 'link', 'set', 'f0', 'up');
  await ipIn(net.ns.gv, 'link', 'set', 'f0', 'up');
  await disableTxChecksumOffload(net.ns.gv, 'f0');
  // The headend's fabric NIC merges a VTEP's runs of datagrams (GRO), as a physical NIC does by default; a
  // veth does not unless told, and the headend would then read every frame from the fabric on its own.
  // CK_BENCH_FABRIC_GRO=0 leaves it off, for the figures before.
  if (process.env['CK_BENCH_FABRIC_GRO'] !== '0') await nsExec(net.ns.gb, 'python3', ['-c', PY_GRO_ON, 'f0']);
}

/**
 * Between namespaces a veth passes packets on with their checksums still to be done by a "NIC" that never
 * comes; a VXLAN payload read by a userspace socket then carries inner TCP checksums that were never
 * filled in. A real VTEP's NIC (or the kernel, when the NIC lacks the offload) finalises them: turning
 * the offload off on the VTEP's uplink makes the kernel do it here too.
 */
export async function disableTxChecksumOffload(ns: string, dev: string): Promise<void> {
  await nsExec(ns, 'python3', ['-c', PY_TX_CSUM_OFF, dev]);
}

export async function waitForPing(ns: string, addr: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = await nsExec(ns, 'ping', ['-c', '1', '-W', '1', addr], { allowFailure: true });
    if (r.code === 0) return true;
  }
  return false;
}

export function teardown(net: BenchNet): void {
  removeNetnsWithPrefix(net.prefix);
}
