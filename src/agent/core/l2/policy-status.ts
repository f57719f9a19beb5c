// SPDX-License-Identifier: UNLICENSED
// The policy's part of the agent's status document: counters, the MAC and neighbour tables as rows, and
// the alarms, as plain data (status socket, `connector-agent status`).
import { macToString } from '../../../shared/l2/mac.js';
import { neighbourKeyToString } from './neighbour-table.js';
import type { L2Policy } from './policy.js';

export interface PolicyStatus {
  counters: Record<string, unknown>;
  macTable: Record<string, unknown>[];
  neighbours: Record<string, unknown>[];
  alarms: { active: Record<string, unknown>[]; cleared: Record<string, unknown>[] };
}

export function policyStatus(policy: L2Policy, now: number): PolicyStatus {
  const s = policy.snapshot(now);
  return {
    counters: { ...s.counters, tunnelBlocked: s.tunnelBlocked, reoriginatePending: s.reoriginatePending },
    macTable: policy.macs.entries(now).map((e) => ({
      mac: macToString(e.key),
      side: e.side,
      ageS: Math.round((now - e.lastSeenMs) / 1000),
      state: e.frozenUntilMs > now ? 'frozen' : 'learned',
    })),
    // One row per claim: an IP held on both sides (split brain) shows twice.
    neighbours: policy.neighbours.entries(now).flatMap((b) =>
      (['lan', 'tunnel'] as const).flatMap((side) => {
        const c = b[side];
        if (!c) return [];
        return [
          {
            ip: neighbourKeyToString(b.key),
            mac: macToString(c.mac),
            side,
            ageS: Number.isFinite(c.lastSeenMs) ? Math.round((now - c.lastSeenMs) / 1000) : 0,
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
}
