// SPDX-License-Identifier: UNLICENSED
// What the agent needs from the host's network configuration: attach its TAP to the bridge, and know the
// bridge's own MAC and addresses (the Connector's management identity, which must never be tunnelled).
import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { exec } from '../../shared/exec.js';
import type { Logger } from '../../shared/log.js';
import { ConnectorError } from '../../shared/errors.js';
import { macKey, parseMac } from '../../shared/l2/mac.js';
import type { OwnAddresses } from '../core/own-addresses.js';

export async function attachToBridge(tap: string, bridge: string): Promise<void> {
  try {
    await exec('ip', ['link', 'set', 'dev', tap, 'master', bridge]);
    await exec('ip', ['link', 'set', 'dev', tap, 'up']);
  } catch (e) {
    throw new ConnectorError(
      'CK_ERR_TAP',
      `cannot attach ${tap} to bridge ${bridge}: ${(e as Error).message} (does ${bridge} exist? on OpenWrt set \`option attach netifd\` and list ${tap} in br-lan's ports)`,
      { cause: e },
    );
  }
}

/**
 * The TAP is a bridge port, never a host: without this the kernel gives it a link-local address, and the
 * Connector's own DAD, MLD and router solicitations leave into the tenant's segment under the TAP's
 * random MAC (a new one at every start). A kernel without IPv6 has no such file: nothing to do.
 */
export function disableTapIpv6(tap: string, log: Logger): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${tap}/disable_ipv6`, '1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('cannot disable IPv6 on the TAP', { tap, error: (e as Error).message });
  }
}

export type { OwnAddresses };

/**
 * The bridge MAC and the addresses configured on it; a missing bridge gives empty lists (retried later).
 * Read from /sys and the kernel's interface list in-process: no child process on the agent's event loop.
 */
export async function readOwnAddresses(bridge: string): Promise<OwnAddresses> {
  const out: OwnAddresses = { macs: [], ipv4: [], ipv6: [] };
  try {
    out.macs.push(macKey(parseMac(readFileSync(`/sys/class/net/${bridge}/address`, 'utf8'))));
  } catch {
    return out;
  }
  for (const a of networkInterfaces()[bridge] ?? []) {
    if (a.family === 'IPv4') out.ipv4.push(a.address);
    else out.ipv6.push(a.address);
  }
  return out;
}
