// SPDX-License-Identifier: UNLICENSED
// Applies a LabPlan with iproute2, sysctl and nftables. Every command runs inside a lab namespace
// (`ip -n`, `ip netns exec`); nothing is created in the caller's namespace.
import { exec } from '../../shared/exec.js';
import { addNetns, addVeth, ipIn, nsExec, sysctlIn } from './netns.js';
import { PY_GRO_ON, PY_TX_CSUM_OFF } from '../core/py-tools.js';
import { IPV6_ROLES, nsName, type LabNat, type LabPlan } from '../core/topology.js';

export type Progress = (line: string) => void;

/** Masquerade outwards, and like any CGNAT or home router, no new connections inwards. */
function natRuleset(n: LabNat): string {
  const match = n.from ? `ip saddr ${n.from} ` : '';
  return [
    'table ip lab_nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${match}oifname "${n.outIf}" masquerade`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    ct state established,related accept',
    `    iifname "${n.blockNewFrom}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function buildLab(prefix: string, plan: LabPlan, progress: Progress = () => {}): Promise<void> {
  const ns = (node: string): string => nsName(prefix, node);

  progress(`creating ${plan.nodes.length} namespaces (${prefix}-*)`);
  for (const n of plan.nodes) {
    await addNetns(ns(n.name));
    const off = IPV6_ROLES.has(n.role) ? '0' : '1';
    await sysctlIn(ns(n.name), 'net.ipv6.conf.all.disable_ipv6', off, true);
    await sysctlIn(ns(n.name), 'net.ipv6.conf.default.disable_ipv6', off, true);
  }

  progress('creating bridges');
  for (const b of plan.bridges) {
    // STP off: a lab switch must forward at once (a real customer switch may not, that is the agent's problem).
    await ipIn(
      ns(b.node),
      'link',
      'add',
      b.name,
      ...(b.mac ? ['address', b.mac] : []),
      'type',
      'bridge',
      'stp_state',
      '0',
      'forward_delay',
      '0',
    );
    // Bridged frames must not pass through iptables when br_netfilter happens to be loaded on the host.
    await sysctlIn(ns(b.node), 'net.bridge.bridge-nf-call-iptables', '0', true);
    await sysctlIn(ns(b.node), 'net.bridge.bridge-nf-call-arptables', '0', true);
  }

  progress(`wiring ${plan.links.length} links`);
  for (const l of plan.links) {
    await addVeth(
      { ns: ns(l.a.node), ifname: l.a.ifname, ...(l.a.mac ? { mac: l.a.mac } : {}) },
      { ns: ns(l.b.node), ifname: l.b.ifname, ...(l.b.mac ? { mac: l.b.mac } : {}) },
      l.mtu,
    );
    for (const end of [l.a, l.b]) {
      if (end.bridge) await ipIn(ns(end.node), 'link', 'set', end.ifname, 'master', end.bridge);
      for (const a of end.addrs ?? []) await ipIn(ns(end.node), 'addr', 'add', a, 'dev', end.ifname);
      await ipIn(ns(end.node), 'link', 'set', end.ifname, 'up');
      if (end.txChecksumOff) await nsExec(ns(end.node), 'python3', ['-c', PY_TX_CSUM_OFF, end.ifname]);
      if (end.gro) await nsExec(ns(end.node), 'python3', ['-c', PY_GRO_ON, end.ifname]);
    }
  }

  if (plan.vxlans.length > 0) progress(`creating ${plan.vxlans.length} kernel VXLAN VTEPs`);
  for (const v of plan.vxlans) {
    await ipIn(
      ns(v.node),
      'link',
      'add',
      v.name,
      'mtu',
      '1500',
      'type',
      'vxlan',
      'id',
      String(v.vni),
      'local',
      v.local,
      'remote',
      v.remote,
      'dstport',
      String(v.dstport),
      'dev',
      v.dev,
    );
    await ipIn(ns(v.node), 'link', 'set', v.name, 'master', v.bridge);
    await ipIn(ns(v.node), 'link', 'set', v.name, 'up');
  }

  for (const b of plan.bridges) {
    for (const a of b.addrs ?? []) await ipIn(ns(b.node), 'addr', 'add', a, 'dev', b.name);
    await ipIn(ns(b.node), 'link', 'set', b.name, 'up');
  }

  progress('routes, forwarding and NAT');
  for (const r of plan.routes) await ipIn(ns(r.node), 'route', 'add', 'default', 'via', r.via);
  for (const n of plan.forwarding) await sysctlIn(ns(n), 'net.ipv4.ip_forward', '1');
  for (const n of plan.nat) {
    await nsExec(ns(n.node), 'nft', ['-f', '-'], { input: natRuleset(n) });
    // Conntrack's timeouts are per namespace; the NAT rule above has loaded conntrack, so the keys exist.
    // Both: a datagram tunnel's flow is "answered" (stream) after its first reply.
    if (n.udpTimeoutS !== undefined) {
      await sysctlIn(ns(n.node), 'net.netfilter.nf_conntrack_udp_timeout', String(n.udpTimeoutS));
      await sysctlIn(ns(n.node), 'net.netfilter.nf_conntrack_udp_timeout_stream', String(n.udpTimeoutS));
    }
  }
}

/** Fails early, with what to install, when a tool the lab needs is missing. */
export async function checkTools(tools: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tools) {
    const r = await exec('sh', ['-c', `command -v ${t}`], { allowFailure: true });
    if (r.code !== 0) missing.push(t);
  }
  return missing;
}
