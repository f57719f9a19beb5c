// SPDX-License-Identifier: UNLICENSED
// Whether the interface the VTEPs' VXLAN arrives on does GRO. The headend reads VXLAN with UDP_GRO (and
// the kernel engine's vxlan device has GRO of its own): with GRO on the NIC one read carries a run of a
// VTEP's datagrams, without it every frame from the fabric is a read of its own, and toward the LAN
// (a restore's direction) the headend spent 1.5 times the CPU per GB on a veth without it
// (docs/performance.md). A physical or virtio NIC has it on by default; a veth, as in a container, off.
import { networkInterfaces } from 'node:os';
import { loadTapAddon, type TapAddon } from '../../shared/native/addon.js';
import type { Logger } from '../../shared/log.js';

export type FabricGro =
  | { state: 'on' | 'off'; ifname: string }
  /** Nothing to ask: a wildcard address, an address no interface holds, or an addon without the call. */
  | { state: 'unknown'; reason: string };

/** The interface holding `localAddress` in this namespace (libuv lists only interfaces up and running). */
function interfaceOf(localAddress: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.address === localAddress)) return name;
  }
  return undefined;
}

export function fabricGro(localAddress: string, load: () => TapAddon = loadTapAddon): FabricGro {
  if (localAddress === '0.0.0.0' || localAddress === '::') return { state: 'unknown', reason: 'vxlan.localAddress is a wildcard' };
  const ifname = interfaceOf(localAddress);
  if (ifname === undefined) return { state: 'unknown', reason: `no running interface holds ${localAddress}` };
  let ask: TapAddon['netdevGro'];
  try {
    ask = load().netdevGro;
  } catch (e) {
    return { state: 'unknown', reason: e instanceof Error ? e.message : String(e) };
  }
  if (ask === undefined) return { state: 'unknown', reason: 'the native addon predates netdevGro' };
  try {
    return { state: ask(ifname) ? 'on' : 'off', ifname };
  } catch (e) {
    return { state: 'unknown', reason: e instanceof Error ? e.message : String(e) };
  }
}

/** At start: a warning with the fix when the fabric interface reads without GRO; a debug line when unknown. */
export function reportFabricGro(localAddress: string, log: Logger, load?: () => TapAddon): FabricGro {
  const g = fabricGro(localAddress, load);
  if (g.state === 'off') {
    log.warn('VXLAN interface without GRO: one read per frame from the fabric', {
      interface: g.ifname,
      fix: `ethtool -K ${g.ifname} gro on`,
    });
  } else if (g.state === 'unknown') log.debug('VXLAN interface GRO not known', { reason: g.reason });
  return g;
}
