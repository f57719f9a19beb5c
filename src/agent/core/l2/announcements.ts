// SPDX-License-Identifier: UNLICENSED
// What follows from a binding the neighbour table just observed (docs/l2-policy.md, rule 8): counting
// it, and the announcements the Connector originates because of it. A binding that moved is
// re-announced (GARP / unsolicited NA, a few copies) toward the side that still caches the old MAC; a
// quiet LAN holder whose address the DC claims is probed first (unicast ARP probe / DAD NS); a split brain
// cancels any pending announcement, so the Connector never takes a side. The frames themselves (GARPs,
// probes, unsolicited NAs, DAD NS seen on the wire) are class ANNOUNCE: never proxied, never miss-limited.
import type { PolicyContext } from './context.js';
import type { NeighbourKey, NeighbourObserveResult } from './neighbour-table.js';
import { otherSide, type FrameSide } from './side.js';

export function afterObserve(
  x: PolicyContext,
  res: NeighbourObserveResult,
  key: NeighbourKey,
  mac: number,
  side: FrameSide,
  router: boolean,
  now: number,
): void {
  const ev = x.counters.events;
  switch (res) {
    case 'new':
      ev['neighbour-learned']++;
      break;
    case 'moved':
      ev['neighbour-moved']++;
      // Announce on behalf of the new holder toward the side that still has the old MAC cached.
      if (x.reoriginator.schedule({ key, mac, toward: otherSide(side), router }, now)) ev['reoriginate-scheduled']++;
      else ev['reoriginate-refused']++;
      break;
    case 'contested':
      ev['neighbour-contested']++;
      break;
    case 'verify': {
      ev['neighbour-contested']++;
      const holder = x.neighbours.lookup(key, now)?.lan;
      if (holder && x.reoriginator.scheduleVerify(key, holder.mac, mac, now)) ev['neighbour-verify-probe']++;
      break;
    }
    case 'split-brain':
      ev['neighbour-split-brain']++;
      // A pending announcement for this IP would take a side in the conflict: stop it.
      x.reoriginator.cancel(key);
      break;
    case 'table-full':
      ev['neighbour-learn-refused-full']++;
      break;
    case 'static-conflict':
      ev['neighbour-static-conflict']++;
      break;
    case 'refreshed':
      break;
  }
}

/**
 * The tunnel (re)attached, perhaps through another headend after a failover: the datacentre's VTEPs
 * still send the site's MACs to the old headend until their FDB ages (300 s on Linux). Announcing each
 * LAN host the table holds (GARP / unsolicited NA toward the tunnel, the reoriginator's copies) makes the
 * new headend flood them, so every VTEP re-learns the site behind it now. Bounded by the reoriginator's
 * pending limit (the rest count as refused); LAN hosts with no IP seen are re-learned by their next frame.
 * Returns how many were scheduled.
 */
export function announceLanOnAttach(x: Pick<PolicyContext, 'neighbours' | 'reoriginator' | 'counters'>, now: number): number {
  const ev = x.counters.events;
  let n = 0;
  for (const b of x.neighbours.entries(now)) {
    if (b.current !== 'lan' || b.lan === null) continue;
    if (x.reoriginator.schedule({ key: b.key, mac: b.lan.mac, toward: 'tunnel', router: b.lan.router }, now)) {
      ev['reoriginate-scheduled']++;
      n++;
    } else ev['reoriginate-refused']++;
  }
  return n;
}
