// SPDX-License-Identifier: UNLICENSED
// What the agent needs from the host's network configuration: attach its TAP to the bridge, and know the
// bridge's own MAC and addresses (the Connector's management identity, which must never be tunnelled).
import { readFileSync } from 'node:fs';
import { exec } from '../../shared/exec.js';
import { ConnectorError } from '../../shared/errors.js';
import { macKey, parseMac } from '../../shared/l2/mac.js';

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

export interface OwnAddresses {
  macs: number[];
  ipv4: string[];
  ipv6: string[];
}

/** The bridge MAC and the addresses configured on it; missing bridge -> empty lists (retried later). */
export async function readOwnAddresses(bridge: string): Promise<OwnAddresses> {
  const out: OwnAddresses = { macs: [], ipv4: [], ipv6: [] };
  try {
    out.macs.push(macKey(parseMac(readFileSync(`/sys/class/net/${bridge}/address`, 'utf8'))));
  } catch {
    return out;
  }
  const r = await exec('ip', ['-j', 'addr', 'show', 'dev', bridge], { allowFailure: true });
  if (r.code !== 0) return out;
  try {
    const links = JSON.parse(r.stdout) as { addr_info?: { family: string; local: string }[] }[];
    for (const l of links) {
      for (const a of l.addr_info ?? []) {
        if (a.family === 'inet') out.ipv4.push(a.local);
        else if (a.family === 'inet6') out.ipv6.push(a.local);
      }
    }
  } catch {
    // busybox `ip` without -j support: management addresses stay unknown, own MAC still protects
  }
  return out;
}
