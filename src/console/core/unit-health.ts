// SPDX-License-Identifier: UNLICENSED
// A unit's own account of itself, as its page shows it: the retained status and health documents it
// publishes on the OTA channel (the agent's status socket, cut to size), reduced to plain rows of strings
// and numbers. The documents come from authenticated units but are still input: anything of the wrong
// shape is left out, lists are capped, and a unit that never reported gives null, not an error.

export interface UnitHealth {
  /** When the unit made the health document; null when only its status is known. */
  reportedAt: string | null;
  online: boolean | null;
  otaVersion: string | null;
  otaJob: string | null;
  phase: string | null;
  tunnel: Record<string, string | number | boolean>;
  /** Counter name (dotted path) and value, the non-zero ones. */
  counters: [string, number][];
  macTable: Record<string, string | number>[];
  macTotal: number;
  neighbours: Record<string, string | number | boolean>[];
  neighbourTotal: number;
  alarms: Record<string, string | number>[];
  truncated: boolean;
}

const MAX_ROWS = 200;
const MAX_COUNTERS = 200;

type Scalar = string | number | boolean;
const isScalar = (v: unknown): v is Scalar =>
  (typeof v === 'string' && v.length <= 200) || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean';

const obj = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

function scalars(v: unknown, keep: (v: unknown) => boolean = isScalar): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const [k, x] of Object.entries(obj(v) ?? {}).slice(0, 40)) if (keep(x) && isScalar(x)) out[k] = x;
  return out;
}

function rows<T>(v: unknown, keep: (v: unknown) => boolean = isScalar): T[] {
  return (Array.isArray(v) ? v : []).slice(0, MAX_ROWS).flatMap((r) => (obj(r) ? [scalars(r, keep) as T] : []));
}

function counters(v: unknown, prefix = '', out: [string, number][] = [], depth = 0): [string, number][] {
  for (const [k, x] of Object.entries(obj(v) ?? {})) {
    if (out.length >= MAX_COUNTERS) break;
    const name = prefix ? `${prefix}.${k}` : k;
    if (typeof x === 'number' && Number.isFinite(x) && x !== 0) out.push([name, x]);
    else if (depth < 3) counters(x, name, out, depth + 1);
  }
  return out;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length <= 200 ? v : null);
const count = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fallback);

export function unitHealth(status: unknown, health: unknown): UnitHealth | null {
  const s = obj(status);
  const h = obj(health);
  if (!s && !h) return null;
  const job = obj(s?.['job']);
  const macTable = rows<Record<string, string | number>>(h?.['macTable'], (x) => typeof x !== 'boolean');
  const neighbours = rows<Record<string, Scalar>>(h?.['neighbours']);
  return {
    reportedAt: str(h?.['at']),
    online: typeof s?.['online'] === 'boolean' ? s['online'] : null,
    otaVersion: str(s?.['version']),
    otaJob: job && str(job['jobId']) ? `${str(job['jobId'])}: ${str(job['state']) ?? '?'}` : null,
    phase: str(h?.['phase']),
    tunnel: scalars(h?.['tunnel']),
    counters: counters(h?.['counters']),
    macTable,
    macTotal: count(h?.['macTotal'], macTable.length),
    neighbours,
    neighbourTotal: count(h?.['neighbourTotal'], neighbours.length),
    alarms: rows<Record<string, string | number>>(h?.['alarms'], (x) => typeof x !== 'boolean'),
    truncated: h?.['truncated'] === true,
  };
}
