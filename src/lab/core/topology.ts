// SPDX-License-Identifier: UNLICENSED
// The lab's topology as plain data: which namespaces exist, how they are wired, which addresses they carry.
// Pure: `planLab` only describes; build.ts applies the plan with iproute2/nftables. Tenant B is a copy of
// tenant A with the very same subnet, IPs and MACs: only the VNI the headend assigns keeps them apart.
//
//  one-port (default; the tunnel leaves through the LAN it extends):
//
//   lan-host ─┐                                     (fabric, MTU 9000)
//   router ───┤ sw ── connector(br-lan + tap-dr)    dc ──────────── hv ── br-a ── vm
//     │ NAT   ┘                                      │ headend        └─ vx-a (VNI 1001) ─┘
//     └── isp (NAT, CGNAT stand-in) ─────────────────┘ 203.0.113.10
//
//  two-port: the connector also has a WAN leg (eth0) straight to isp and takes its default route there.
//
//  --wan: a `wan` node sits on the isp-dc link as a wire (isp:dc ── wan:isp [delay line] wan:dc ── dc:inet),
//  with no addresses of its own; the delay line (native/wan/wan.c) gives that link delay, rate and loss.

export type Wiring = 'one-port' | 'two-port';
export const WIRINGS: readonly Wiring[] = ['one-port', 'two-port'];
export type TenantId = 'a' | 'b';

export type NodeRole = 'switch' | 'lan-host' | 'router' | 'connector' | 'vm' | 'isp' | 'dc' | 'hv' | 'wan';

/**
 * Nodes that run with IPv6 on, as their real counterparts do (every OpenWrt has it on br-lan; hosts, VMs
 * and routers send DAD, MLD and router solicitations): what the Connector itself sends must still never
 * enter the tunnel. Switches, the hypervisor's bridges and the WAN side stay quiet: they have no address
 * of their own on the tenant's segment.
 */
export const IPV6_ROLES: ReadonlySet<NodeRole> = new Set<NodeRole>(['lan-host', 'router', 'connector', 'vm']);

export interface LabNode {
  /** Short name used on the command line (`lab exec NODE`) and as the namespace suffix. */
  name: string;
  role: NodeRole;
  tenant?: TenantId;
  description: string;
}

export interface LinkEnd {
  node: string;
  ifname: string;
  mac?: string;
  /** CIDR addresses; none for ports that join a bridge. */
  addrs?: readonly string[];
  /** Bridge (in the same node) this end becomes a port of. */
  bridge?: string;
  /**
   * Compute checksums in software before sending. A veth otherwise hands the peer partially
   * checksummed packets, which a userspace receiver (the headend's VXLAN socket) would forward as
   * corrupt inner frames; a real NIC always puts complete checksums on the wire.
   */
  txChecksumOff?: boolean;
  /**
   * Merge runs of received packets (GRO), as a physical NIC does by default and a veth does not: the
   * headend's fabric end, where VXLAN from the VTEPs is read in runs (docs/performance.md).
   */
  gro?: boolean;
}

export interface LabLink {
  a: LinkEnd;
  b: LinkEnd;
  mtu?: number;
}

export interface LabBridge {
  node: string;
  name: string;
  mac?: string;
  addrs?: readonly string[];
}

export interface LabVxlan {
  node: string;
  name: string;
  vni: number;
  local: string;
  remote: string;
  dev: string;
  bridge: string;
  dstport: number;
}

export interface LabRoute {
  node: string;
  /** Default route via this gateway. */
  via: string;
}

export interface LabNat {
  node: string;
  /** Masquerade traffic leaving through this interface. */
  outIf: string;
  /** Only traffic from this prefix (CGNAT: 100.64.0.0/10). */
  from?: string;
  /** Refuse new connections arriving on this interface: nothing outside can open a path inwards. */
  blockNewFrom: string;
  /** Conntrack UDP timeouts in this namespace, s (unanswered and answered flows alike); default the kernel's 30/120. */
  udpTimeoutS?: number;
}

export interface LabTenant {
  id: TenantId;
  vni: number;
  /** Device serial of this tenant's connector (CN and serialNumber of its certificate). */
  serial: string;
  nodes: { switch: string; lanHost: string; router: string; connector: string; vm: string };
}

export interface LabPlan {
  wiring: Wiring;
  nodes: readonly LabNode[];
  bridges: readonly LabBridge[];
  links: readonly LabLink[];
  vxlans: readonly LabVxlan[];
  routes: readonly LabRoute[];
  nat: readonly LabNat[];
  /** Namespaces that route between interfaces (ip_forward=1). */
  forwarding: readonly string[];
  tenants: readonly LabTenant[];
  headend: { node: string; publicAddr: string; port: number; fabricAddr: string };
  hv: { node: string; fabricAddr: string };
  /** The delay line's node and its two interfaces (towards isp, towards dc), when the lab has a WAN. */
  wan?: { node: string; ifIsp: string; ifDc: string };
}

export interface PlanOptions {
  /** A `wan` node between isp and dc for the delay line. */
  wan?: boolean;
  /** UDP NAT timeout of every NAT in the lab (isp's CGNAT and the customer routers), s. */
  natUdpTimeoutS?: number;
}

/** Addresses and MACs every tenant site uses: identical for A and B on purpose. */
export const SITE = Object.freeze({
  subnet: '192.168.10.0/24',
  prefixLen: 24,
  router: { ip: '192.168.10.1', mac: '02:00:00:00:10:01' },
  connector: { ip: '192.168.10.2', mac: '02:00:00:00:10:02' },
  vm: { ip: '192.168.10.5', mac: '02:00:00:00:10:05' },
  lanHost: { ip: '192.168.10.20', mac: '02:00:00:00:10:20' },
});

/** DC side: TEST-NET-3 for the headend's public address, RFC 2544 range for the fabric. */
export const DC = Object.freeze({
  ispAddr: '203.0.113.1',
  publicAddr: '203.0.113.10',
  publicPrefixLen: 24,
  tlsPort: 443,
  /** The EST enrollment server (connector enroll-server), next to the headend. */
  estPort: 8443,
  fabricAddr: '198.18.0.1',
  hvFabricAddr: '198.18.0.11',
  fabricPrefixLen: 24,
  fabricMtu: 9000,
  vxlanPort: 4789,
});

export const TENANT_VNI: Readonly<Record<TenantId, number>> = Object.freeze({ a: 1001, b: 1002 });
export const TENANT_SERIAL: Readonly<Record<TenantId, string>> = Object.freeze({ a: 'LAB-A-0001', b: 'LAB-B-0001' });

/** `name` for tenant a, `name-b` for tenant b. */
function nodeName(base: string, tenant: TenantId): string {
  return tenant === 'a' ? base : `${base}-b`;
}

const withCidr = (ip: string, len: number): string => `${ip}/${len}`;

export function planLab(wiring: Wiring = 'one-port', opts: PlanOptions = {}): LabPlan {
  const nodes: LabNode[] = [
    { name: 'isp', role: 'isp', description: 'ISP / CGNAT: masquerades 100.64.0.0/10 towards the DC' },
    {
      name: 'dc',
      role: 'dc',
      description: `datacentre edge: headend on ${DC.publicAddr}:${DC.tlsPort}, EST on :${DC.estPort}, fabric ${DC.fabricAddr}`,
    },
    { name: 'hv', role: 'hv', description: `hypervisor: kernel vxlan VTEPs on ${DC.hvFabricAddr}, one bridge per tenant` },
  ];
  const bridges: LabBridge[] = [];
  const ispEnd: LinkEnd = { node: 'isp', ifname: 'dc', addrs: [withCidr(DC.ispAddr, DC.publicPrefixLen)] };
  const dcEnd: LinkEnd = { node: 'dc', ifname: 'inet', addrs: [withCidr(DC.publicAddr, DC.publicPrefixLen)] };
  const links: LabLink[] = [
    ...(opts.wan
      ? [
          { a: ispEnd, b: { node: 'wan', ifname: 'isp' } },
          { a: { node: 'wan', ifname: 'dc' }, b: dcEnd },
        ]
      : [{ a: ispEnd, b: dcEnd }]),
    {
      a: { node: 'dc', ifname: 'fabric', addrs: [withCidr(DC.fabricAddr, DC.fabricPrefixLen)], gro: true },
      b: { node: 'hv', ifname: 'fabric', addrs: [withCidr(DC.hvFabricAddr, DC.fabricPrefixLen)], txChecksumOff: true },
      mtu: DC.fabricMtu,
    },
  ];
  const vxlans: LabVxlan[] = [];
  const routes: LabRoute[] = [{ node: 'dc', via: DC.ispAddr }];
  const udp = opts.natUdpTimeoutS === undefined ? {} : { udpTimeoutS: opts.natUdpTimeoutS };
  const nat: LabNat[] = [{ node: 'isp', outIf: 'dc', from: '100.64.0.0/10', blockNewFrom: 'dc', ...udp }];
  if (opts.wan) nodes.push({ name: 'wan', role: 'wan', description: 'WAN between isp and dc: the delay line (delay, jitter, rate, loss)' });
  const forwarding = ['isp'];
  const tenants: LabTenant[] = [];

  (['a', 'b'] as const).forEach((t, i) => {
    const n = {
      switch: nodeName('sw', t),
      lanHost: t === 'a' ? 'lan-host' : 'lan-b',
      router: nodeName('router', t),
      connector: nodeName('connector', t),
      vm: nodeName('vm', t),
    };
    const T = t.toUpperCase();
    nodes.push(
      { name: n.switch, role: 'switch', tenant: t, description: `tenant ${T} LAN switch (bridge sw)` },
      { name: n.lanHost, role: 'lan-host', tenant: t, description: `tenant ${T} LAN host ${SITE.lanHost.ip}` },
      { name: n.router, role: 'router', tenant: t, description: `tenant ${T} customer router ${SITE.router.ip}, NAT to isp` },
      {
        name: n.connector,
        role: 'connector',
        tenant: t,
        description: `tenant ${T} Connector: br-lan ${SITE.connector.ip} + tap-dr (agent)`,
      },
      { name: n.vm, role: 'vm', tenant: t, description: `tenant ${T} recovered VM ${SITE.vm.ip} behind hv` },
    );
    bridges.push(
      { node: n.switch, name: 'sw' },
      {
        node: n.connector,
        name: 'br-lan',
        mac: SITE.connector.mac,
        addrs: [withCidr(SITE.connector.ip, SITE.prefixLen)],
      },
    );
    const custNet = `100.64.${1 + i * 2}`; // router uplink: 100.64.1.0/24 (A), 100.64.3.0/24 (B)
    const wanNet = `100.64.${2 + i * 2}`; // two-port WAN: 100.64.2.0/24 (A), 100.64.4.0/24 (B)
    links.push(
      {
        a: { node: n.lanHost, ifname: 'eth0', mac: SITE.lanHost.mac, addrs: [withCidr(SITE.lanHost.ip, SITE.prefixLen)] },
        b: { node: n.switch, ifname: 'p-host', bridge: 'sw' },
      },
      {
        a: { node: n.router, ifname: 'lan', mac: SITE.router.mac, addrs: [withCidr(SITE.router.ip, SITE.prefixLen)] },
        b: { node: n.switch, ifname: 'p-router', bridge: 'sw' },
      },
      {
        a: { node: n.connector, ifname: 'eth1', bridge: 'br-lan' },
        b: { node: n.switch, ifname: 'p-conn', bridge: 'sw' },
      },
      {
        a: { node: n.router, ifname: 'wan', addrs: [`${custNet}.2/24`] },
        b: { node: 'isp', ifname: `cust-${t}`, addrs: [`${custNet}.1/24`] },
      },
      {
        a: { node: n.vm, ifname: 'eth0', mac: SITE.vm.mac, addrs: [withCidr(SITE.vm.ip, SITE.prefixLen)] },
        b: { node: 'hv', ifname: `vm-${t}`, bridge: `br-${t}` },
      },
    );
    bridges.push({ node: 'hv', name: `br-${t}` });
    vxlans.push({
      node: 'hv',
      name: `vx-${t}`,
      vni: TENANT_VNI[t],
      local: DC.hvFabricAddr,
      remote: DC.fabricAddr,
      dev: 'fabric',
      bridge: `br-${t}`,
      dstport: DC.vxlanPort,
    });
    // Hosts and the recovered VM share one gateway: the customer's router, reached through the tunnel from the DC.
    routes.push({ node: n.router, via: `${custNet}.1` }, { node: n.lanHost, via: SITE.router.ip }, { node: n.vm, via: SITE.router.ip });
    nat.push({ node: n.router, outIf: 'wan', blockNewFrom: 'wan', ...udp });
    forwarding.push(n.router);
    if (wiring === 'two-port') {
      links.push({
        a: { node: n.connector, ifname: 'eth0', addrs: [`${wanNet}.2/24`] },
        b: { node: 'isp', ifname: `wan-${t}`, addrs: [`${wanNet}.1/24`] },
      });
      routes.push({ node: n.connector, via: `${wanNet}.1` });
    } else {
      routes.push({ node: n.connector, via: SITE.router.ip });
    }
    tenants.push({ id: t, vni: TENANT_VNI[t], serial: TENANT_SERIAL[t], nodes: n });
  });

  return {
    wiring,
    nodes,
    bridges,
    links,
    vxlans,
    routes,
    nat,
    forwarding,
    tenants,
    headend: { node: 'dc', publicAddr: DC.publicAddr, port: DC.tlsPort, fabricAddr: DC.fabricAddr },
    hv: { node: 'hv', fabricAddr: DC.hvFabricAddr },
    ...(opts.wan ? { wan: { node: 'wan', ifIsp: 'isp', ifDc: 'dc' } } : {}),
  };
}

/** Namespace name of a node: every lab's names carry its unique prefix. */
export function nsName(prefix: string, node: string): string {
  return `${prefix}-${node}`;
}
