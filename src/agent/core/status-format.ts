// SPDX-License-Identifier: UNLICENSED
// The agent's status document (what the status socket serves) and its human rendering.

export interface StatusDoc {
  version: string;
  pid: number;
  uptimeS: number;
  /** What the agent is doing, and why when it is waiting. */
  phase: string;
  reason?: string;
  identity?: Record<string, unknown>;
  tunnel?: Record<string, unknown>;
  counters?: Record<string, unknown>;
  macTable?: readonly Record<string, unknown>[];
  neighbours?: readonly Record<string, unknown>[];
  alarms?: { active: readonly Record<string, unknown>[]; cleared?: readonly Record<string, unknown>[] };
  ota?: Record<string, unknown>;
  /** One entry per VLAN of the LAN trunk: its session, counters, MAC table and alarms. */
  vlans?: readonly Record<string, unknown>[];
}

function flat(prefix: string, v: unknown, out: string[]): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) flat(prefix ? `${prefix}.${k}` : k, x, out);
  } else if (v !== undefined && v !== 0 && v !== null && v !== '') {
    out.push(`${prefix}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  }
}

function kv(v: Record<string, unknown> | undefined): string {
  const out: string[] = [];
  flat('', v ?? {}, out);
  return out.join(' ');
}

function table(rows: readonly Record<string, unknown>[], cols: readonly string[]): string[] {
  if (rows.length === 0) return ['  (empty)'];
  const cells = rows.map((r) => cols.map((c) => (r[c] === undefined ? '' : String(r[c]))));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (vals: readonly string[]) =>
    '  ' +
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(cols), ...cells.map(line)];
}

export function renderStatus(s: StatusDoc): string {
  const lines = [`connector-agent ${s.version} pid ${s.pid} up ${s.uptimeS}s: ${s.phase}${s.reason ? ` (${s.reason})` : ''}`];
  if (s.identity) lines.push(`identity  ${kv(s.identity)}`);
  if (s.tunnel) lines.push(`tunnel    ${kv(s.tunnel)}`);
  if (s.ota) lines.push(`ota       ${kv(s.ota)}`);
  if (s.counters) {
    lines.push('counters');
    const out: string[] = [];
    flat('', s.counters, out);
    for (let i = 0; i < out.length; i += 4) lines.push('  ' + out.slice(i, i + 4).join('  '));
  }
  lines.push(`MAC table (${s.macTable?.length ?? 0})`, ...table(s.macTable ?? [], ['mac', 'side', 'ageS', 'state']));
  lines.push(`neighbours (${s.neighbours?.length ?? 0})`, ...table(s.neighbours ?? [], ['ip', 'mac', 'side', 'ageS', 'source']));
  const active = s.alarms?.active ?? [];
  lines.push(`alarms (${active.length} active)`, ...table(active, ['severity', 'code', 'subject', 'count', 'message']));
  return lines.join('\n');
}
