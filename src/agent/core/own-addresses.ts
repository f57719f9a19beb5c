// SPDX-License-Identifier: UNLICENSED
// The Connector's own addresses (the bridge's MAC and IPs: its management identity, never tunnelled), as
// the host reports them, merged with the ones configured in `config l2` and handed to the policy when
// they change (DHCP, SLAAC, a new bridge MAC).
import { parseIpv4 } from './l2/ipv4.js';
import { parseIpv6 } from './l2/nd.js';
import type { L2Policy } from './l2/policy.js';
import type { PolicyConfig } from './l2/policy-config.js';

export interface OwnAddresses {
  macs: number[];
  ipv4: string[];
  /** Text form; a zone suffix (fe80::1%br-lan) is allowed. */
  ipv6: string[];
}

/** Returns an update function that applies `own` to `policy` when it differs from the last one. */
export function ownAddressUpdater(policy: L2Policy, base: PolicyConfig): (own: OwnAddresses) => void {
  let last = '';
  return (own) => {
    const key = JSON.stringify(own);
    if (key === last) return;
    last = key;
    policy.setOwnAddresses({
      macs: [...new Set([...base.ownMacs, ...own.macs])],
      ipv4: [...new Set([...base.ownIpv4, ...own.ipv4.map((a) => parseIpv4(a))])],
      ipv6: [...base.ownIpv6, ...own.ipv6.map((a) => parseIpv6(a.replace(/%.*$/, '')))],
    });
  };
}
