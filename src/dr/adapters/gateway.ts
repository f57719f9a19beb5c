// SPDX-License-Identifier: UNLICENSED
// The DC gateway of a failed-over site: a network namespace with one leg on the segment's bridge in the
// datacentre (where the recovered VMs are) holding the site router's address (and MAC when given), and
// one leg to the DC's egress (an uplink namespace) with NAT. Announced with gratuitous ARP so the VMs'
// caches move to it at once. Withdrawn by deleting the namespace (both legs go with it). A sandbox drill's
// gateway is the same namespace with forwarding off unless the drill allows outbound: the restored VMs
// find their gateway's address, and nothing leaves.
import { createHash } from 'node:crypto';
import { exec } from '../../shared/exec.js';
import type { GatewaySpec } from '../core/failover.js';

export interface GatewayPlacement {
  /** Namespace holding the segment's bridge in the datacentre, and the bridge. */
  dcNetns: string;
  dcBridge: string;
  /** Namespace of the DC's egress router; the uplink veth's far end goes there. */
  uplinkNetns: string;
  /** Gateway side and egress side of the uplink, e.g. 203.0.113.2/24 and 203.0.113.1. */
  uplinkCidr: string;
  uplinkPeerIp: string;
}

export function gatewayName(tenant: string, segment: string): string {
  return `ckgw-${createHash('sha256').update(`${tenant}/${segment}`).digest('hex').slice(0, 10)}`;
}

const GARP = String.raw`
import socket, struct, sys, time
ifname, mac, ip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((ifname, 0))
for i in range(3):
    s.send(b'\xff' * 6 + mac + b'\x08\x06' + struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, ip, b'\0' * 6, ip) + b'\0' * 18)
    if i < 2: time.sleep(0.5)
`;

async function ipn(ns: string, ...args: string[]): Promise<void> {
  await exec('ip', ['-n', ns, ...args]);
}

/** Brings the gateway up; returns once the GARPs are out. Without `outbound` it routes nothing out. */
export async function raiseGateway(name: string, gw: GatewaySpec, p: GatewayPlacement, outbound = true): Promise<{ mac: string }> {
  const h = name.slice(-8);
  const lanPort = `gp${h}`;
  const upPeer = `gu${h}`;
  await exec('ip', ['netns', 'add', name]);
  try {
    await ipn(name, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', lanPort, 'netns', p.dcNetns);
    await ipn(p.dcNetns, 'link', 'set', lanPort, 'master', p.dcBridge);
    await ipn(p.dcNetns, 'link', 'set', lanPort, 'up');
    if (gw.mac) await ipn(name, 'link', 'set', 'lan0', 'address', gw.mac);
    await ipn(name, 'addr', 'add', `${gw.ip}/${gw.prefix}`, 'dev', 'lan0');
    await ipn(name, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', upPeer, 'netns', p.uplinkNetns);
    await ipn(name, 'addr', 'add', p.uplinkCidr, 'dev', 'up0');
    await ipn(p.uplinkNetns, 'addr', 'add', `${p.uplinkPeerIp}/${p.uplinkCidr.split('/')[1] ?? '24'}`, 'dev', upPeer);
    await ipn(p.uplinkNetns, 'link', 'set', upPeer, 'up');
    for (const dev of ['lo', 'lan0', 'up0']) await ipn(name, 'link', 'set', dev, 'up');
    await ipn(name, 'route', 'add', 'default', 'via', p.uplinkPeerIp);
    // A new namespace does not forward; a gateway that may not route out stays that way.
    if (outbound) await exec('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    if (outbound)
      await exec('ip', [
        'netns',
        'exec',
        name,
        'nft',
        'add table ip ckgw; add chain ip ckgw post { type nat hook postrouting priority 100; }; add rule ip ckgw post oifname "up0" masquerade',
      ]);
    const mac = (await exec('ip', ['netns', 'exec', name, 'cat', '/sys/class/net/lan0/address'])).stdout.trim();
    await exec('ip', ['netns', 'exec', name, 'python3', '-c', GARP, 'lan0', mac, gw.ip]);
    return { mac };
  } catch (e) {
    await withdrawGateway(name);
    throw e;
  }
}

export async function withdrawGateway(name: string): Promise<boolean> {
  const r = await exec('ip', ['netns', 'del', name], { allowFailure: true });
  return r.code === 0;
}
