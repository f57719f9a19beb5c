// SPDX-License-Identifier: UNLICENSED
// Adapts the shared Layer-2 policy (src/shared/l2/policy.ts) to the agent's FrameDecider port: LAN is
// the local side, the tunnel the remote side, and re-originated announcements come out of tick().
import { parseIpv4 } from './l2/ipv4.js';
import { macToString } from '../../shared/l2/mac.js';
import { neighbourKeyToString } from './l2/neighbour-table.js';
import { parseIpv6 } from './l2/nd.js';
import { L2Policy } from './l2/policy.js';
import type { PolicyConfig } from './l2/policy-config.js';
import type { FrameDecider, FrameSide, Verdict } from './ports.js';

export function createL2Decider(base: PolicyConfig, now: number): FrameDecider {
  const policy = new L2Policy(base, {}, now);
  let ownKey = '';
  const verdict: { toTunnel: boolean; toLan: boolean; replies: { side: FrameSide; frame: Buffer }[] } = {
    toTunnel: false,
    toLan: false,
    replies: [],
  };
  const NO_REPLIES: readonly { side: FrameSide; frame: Buffer }[] = [];

  return {
    decide(frame, from, t): Verdict {
      const d = policy.decide(frame, from === 'lan' ? 'from-lan' : 'from-tunnel', t);
      verdict.toTunnel = d.action === 'tunnel';
      verdict.toLan = d.action === 'lan';
      if (d.action === 'reply') {
        verdict.replies.length = 0;
        for (const r of d.replies) verdict.replies.push({ side: d.replyToward, frame: r });
      } else if (verdict.replies.length > 0) {
        verdict.replies.length = 0;
      }
      return verdict;
    },
    tick(t) {
      policy.tick(t);
      const due = policy.reoriginator.due(t);
      return due.length === 0 ? NO_REPLIES : due.map((d) => ({ side: d.toward, frame: d.frame }));
    },
    setOwnAddresses(own) {
      const key = JSON.stringify(own);
      if (key === ownKey) return;
      ownKey = key;
      policy.setOwnAddresses({
        macs: [...new Set([...base.ownMacs, ...own.macs])],
        ipv4: [...new Set([...base.ownIpv4, ...own.ipv4.map((a) => parseIpv4(a))])],
        ipv6: [...base.ownIpv6, ...own.ipv6.map((a) => parseIpv6(a.replace(/%.*$/, '')))],
      });
    },
    snapshot(t) {
      const s = policy.snapshot(t);
      return {
        counters: { ...s.counters, tunnelBlocked: s.tunnelBlocked, reoriginatePending: s.reoriginatePending } as Record<string, unknown>,
        macTable: policy.macs.entries(t).map((e) => ({
          mac: macToString(e.key),
          side: e.side === 'local' ? 'lan' : 'tunnel',
          ageS: Math.round((t - e.lastSeenMs) / 1000),
          state: e.frozenUntilMs > t ? 'frozen' : 'learned',
        })),
        // One row per claim: an IP held on both sides (split brain) shows twice.
        neighbours: policy.neighbours.entries(t).flatMap((b) =>
          (['local', 'remote'] as const).flatMap((side) => {
            const c = side === 'local' ? b.local : b.remote;
            if (!c) return [];
            return [
              {
                ip: neighbourKeyToString(b.key),
                mac: macToString(c.mac),
                side: side === 'local' ? 'lan' : 'tunnel',
                ageS: Number.isFinite(c.lastSeenMs) ? Math.round((t - c.lastSeenMs) / 1000) : 0,
                source: b.isStatic ? 'static' : c.source,
                holder: b.current === side,
              },
            ];
          }),
        ),
        alarms: {
          active: s.alarms.active.map((a) => ({ ...a })),
          cleared: s.alarms.cleared.map((a) => ({ ...a })),
        },
      };
    },
  };
}
