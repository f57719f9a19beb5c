// SPDX-License-Identifier: UNLICENSED
// One unit as its page shows it: the fleet row, each live session the headends report for it (a trunk
// unit has one per VLAN), and its history from the headend audit log, newest first. Pure: the fleet row,
// the sessions and the audit lines come in; records of another tenant (a unit revoked and claimed again
// elsewhere) stay hidden from an operator who cannot see that tenant.
import type { LiveSession, UnitView } from './fleet.js';
import { canSee, type Operator } from './operators.js';

export interface UnitSession {
  headend: string;
  vni: number;
  vlan: number;
  state: string;
  transport: string;
  remote: string;
  startedAtMs: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

export interface UnitEvent {
  seq: number | null;
  time: string;
  event: string;
  reason: string | null;
  remote: string | null;
  transport: string | null;
  bytesIn: number | null;
  bytesOut: number | null;
}

export interface UnitDetail extends UnitView {
  sessions: UnitSession[];
  history: UnitEvent[];
}

const HISTORY_EVENTS = new Set(['connect', 'disconnect', 'refused', 'transport']);
export const HISTORY_LIMIT = 200;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function unitDetail(
  unit: UnitView,
  sessions: readonly LiveSession[],
  auditLines: Iterable<string>,
  op: Operator,
  limit = HISTORY_LIMIT,
): UnitDetail {
  const mine = sessions
    .filter((s) => s.serial === unit.serial && canSee(op, s.tenant))
    .map((s) => ({
      headend: s.headend,
      vni: s.vni,
      vlan: s.vlan ?? 0,
      state: s.state,
      transport: s.transport ?? 'tls',
      remote: s.remote,
      startedAtMs: s.startedAtMs,
      framesIn: s.framesIn ?? 0,
      framesOut: s.framesOut ?? 0,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
    }));
  const history: UnitEvent[] = [];
  // A cheap text test first: most lines of a fleet's log are about other units.
  const needle = JSON.stringify(unit.serial);
  for (const line of auditLines) {
    if (!line.includes(needle)) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (r['serial'] !== unit.serial || !HISTORY_EVENTS.has(String(r['event']))) continue;
    if (!canSee(op, str(r['tenant']) ?? undefined)) continue;
    history.push({
      seq: num(r['seq']),
      time: str(r['time']) ?? '',
      event: String(r['event']),
      reason: str(r['reason']),
      remote: str(r['remote']),
      transport: str(r['transport']),
      bytesIn: num(r['bytesIn']),
      bytesOut: num(r['bytesOut']),
    });
    if (history.length > limit) history.shift();
  }
  return { ...unit, sessions: mine, history: history.reverse() };
}
