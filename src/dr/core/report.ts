// SPDX-License-Identifier: UNLICENSED
// Reports of drills and failovers an auditor can file (issue 15, item 4), pure: the event's timeline
// merged with the headend's audit records of the tenant in its window, the measured figures (RTO of a
// failover from the audit log; time to the first successful probe of a drill), and the binding to the
// audit log's hash chain: every audit record used is named by seq and SHA-256 of its line (the chain's
// own hash), with the chain's head at build time, and the report carries the SHA-256 of its own body.
// verifyReport checks a report against the log: its body hash, the chain's links, every named record and
// the head. (`connector audit verify` additionally checks the head pointer file of the headend.)
import { createHash } from 'node:crypto';
import type { Drill, FailoverRecord, TimelineEvent } from './drill.js';

export interface ReportDoc {
  format: 'connector-dr-report/1';
  kind: 'drill' | 'failover';
  id: string;
  tenant: string;
  segment: string;
  builtAt: string;
  window: { from: string; to: string };
  figures: Record<string, number | string | null>;
  timeline: (TimelineEvent & { source: string; auditSeq?: number })[];
  audit: { records: { seq: number; hash: string; event: string }[]; head: { seq: number; hash: string } | null };
  /** SHA-256 (hex) of the JSON of every other field, in this order. */
  reportHash?: string;
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

interface AuditLine {
  line: string;
  rec: Record<string, unknown>;
}

function parseLines(lines: readonly string[]): AuditLine[] {
  const out: AuditLine[] = [];
  for (const line of lines) {
    if (!line) continue;
    try {
      out.push({ line, rec: JSON.parse(line) as Record<string, unknown> });
    } catch {
      // a cut-off tail; verifyReport names it
    }
  }
  return out;
}

const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) : NaN);

/** How far before the event audit records are taken in (the site's loss precedes a failover). */
export const REPORT_LOOKBACK_MS = 24 * 3600 * 1000;

export function buildReport(
  subject: { kind: 'drill'; drill: Drill } | { kind: 'failover'; failover: FailoverRecord },
  auditLines: readonly string[],
  nowMs: number,
): ReportDoc {
  const s = subject.kind === 'drill' ? subject.drill : subject.failover;
  const start = ms(s.startedAt);
  // A failover's window runs on a minute past the handover, to see the site's unit come back.
  const end = s.endedAt ? Math.min(nowMs, ms(s.endedAt) + (subject.kind === 'failover' ? 60_000 : 0)) : nowMs;
  const from =
    subject.kind === 'failover' ? Math.min(start, ...s.timeline.map((e) => ms(e.t)).filter((x) => !Number.isNaN(x))) - 60_000 : start;
  const lines = parseLines(auditLines);
  // A refusal before admission names the serial only: it is the tenant's when that unit's sessions are.
  const serials = new Set(lines.filter(({ rec }) => rec['tenant'] === s.tenant && rec['serial']).map(({ rec }) => rec['serial']));
  const used = lines.filter(({ rec }) => {
    const t = ms(rec['time'] as string);
    const mine = rec['tenant'] === s.tenant || (rec['tenant'] === undefined && serials.has(rec['serial']));
    return mine && t >= Math.max(from, start - REPORT_LOOKBACK_MS) && t <= end;
  });
  const timeline: ReportDoc['timeline'] = [
    ...s.timeline.map((e) => ({ ...e, source: subject.kind })),
    ...used.map(({ rec }) => ({
      t: rec['time'] as string,
      event: `session-${String(rec['event'])}`,
      source: 'audit',
      auditSeq: rec['seq'] as number,
      ...(rec['serial'] ? { serial: rec['serial'] } : {}),
      ...(rec['segment'] ? { segment: rec['segment'] } : {}),
      ...(rec['reason'] ? { reason: rec['reason'] } : {}),
    })),
  ].sort((a, b) => ms(a.t) - ms(b.t));
  const figures: ReportDoc['figures'] = {};
  if (subject.kind === 'failover') {
    const lost = [...used].reverse().find(({ rec }) => rec['event'] === 'disconnect' && ms(rec['time'] as string) <= start);
    const up = s.timeline.find((e) => e.event === 'gateway-up');
    const cmd = s.timeline.find((e) => e.event === 'failover-command');
    figures['siteLostAt'] = lost ? (lost.rec['time'] as string) : null;
    figures['siteLostAuditSeq'] = lost ? (lost.rec['seq'] as number) : null;
    figures['rtoMs'] = lost && up ? ms(up.t) - ms(lost.rec['time'] as string) : null;
    figures['commandToGatewayMs'] = cmd && up ? ms(up.t) - ms(cmd.t) : null;
    const back = s.timeline.find((e) => e.event === 'gateway-withdrawn');
    const reconnect = used.find(({ rec }) => rec['event'] === 'connect' && back && ms(rec['time'] as string) >= ms(back.t));
    figures['failbackReconnectMs'] = back && reconnect ? ms(reconnect.rec['time'] as string) - ms(back.t) : null;
    figures['refusedWhileFailedOver'] = used.filter(({ rec }) => rec['event'] === 'refused' && rec['reason'] === 'failover-active').length;
  } else {
    const probes = s.timeline.filter((e) => e.event === 'probe');
    const firstLan = probes.find((e) => e['side'] === 'lan' && e['ok'] === true);
    figures['probes'] = probes.length;
    figures['probesOk'] = probes.filter((e) => e['ok'] === true).length;
    figures['firstLanReachMs'] = firstLan ? ms(firstLan.t) - start : null;
    figures['state'] = subject.drill.state;
  }
  const last = lines[lines.length - 1];
  const doc: ReportDoc = {
    format: 'connector-dr-report/1',
    kind: subject.kind,
    id: s.id,
    tenant: s.tenant,
    segment: s.segment,
    builtAt: new Date(nowMs).toISOString(),
    window: { from: new Date(Math.max(from, start - REPORT_LOOKBACK_MS)).toISOString(), to: new Date(end).toISOString() },
    figures,
    timeline,
    audit: {
      records: used.map(({ line, rec }) => ({ seq: rec['seq'] as number, hash: sha256Hex(line), event: String(rec['event']) })),
      head: last ? { seq: last.rec['seq'] as number, hash: sha256Hex(last.line) } : null,
    },
  };
  return { ...doc, reportHash: sha256Hex(JSON.stringify(doc)) };
}

export type ReportVerdict = { ok: true; records: number } | { ok: false; problem: string };

export function verifyReport(report: ReportDoc, auditLines: readonly string[]): ReportVerdict {
  const { reportHash, ...body } = report;
  if (reportHash !== sha256Hex(JSON.stringify(body)))
    return { ok: false, problem: 'the report was changed after it was built (reportHash)' };
  const bySeq = new Map<number, string>();
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  for (const [i, line] of auditLines.filter(Boolean).entries()) {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return { ok: false, problem: `audit line ${i + 1} is not JSON` };
    }
    const seq = rec['seq'] as number;
    if (prevHash !== undefined && (rec['prev'] !== prevHash || seq !== (prevSeq ?? 0) + 1)) {
      return { ok: false, problem: `audit line ${i + 1} does not chain to line ${i} (edited, inserted or removed)` };
    }
    prevHash = sha256Hex(line);
    prevSeq = seq;
    bySeq.set(seq, prevHash);
  }
  for (const r of body.audit.records) {
    if (bySeq.get(r.seq) !== r.hash) return { ok: false, problem: `audit record seq ${r.seq} named by the report is missing or changed` };
  }
  const head = body.audit.head;
  if (head && bySeq.get(head.seq) !== head.hash)
    return { ok: false, problem: `the audit head seq ${head.seq} of the report is not in the log` };
  return { ok: true, records: body.audit.records.length };
}

const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** A self-contained page (no scripts, no external resources) to print or file. */
export function renderReportHtml(r: ReportDoc): string {
  const fig = Object.entries(r.figures)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v === null ? 'n/a' : v)}</td></tr>`)
    .join('');
  const rest = (e: Record<string, unknown>): string =>
    Object.entries(e)
      .filter(([k]) => !['t', 'event', 'source', 'auditSeq'].includes(k))
      .map(([k, v]) => `${esc(k)}=${esc(typeof v === 'object' ? JSON.stringify(v) : v)}`)
      .join(' ');
  const rows = r.timeline
    .map(
      (e) =>
        `<tr><td>${esc(e.t)}</td><td>${esc(e.source)}</td><td>${esc(e.event)}</td><td>${esc(e.auditSeq ?? '')}</td><td>${rest(e)}</td></tr>`,
    )
    .join('');
  const recs = r.audit.records
    .map((a) => `<tr><td>${esc(a.seq)}</td><td>${esc(a.event)}</td><td><code>${esc(a.hash)}</code></td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.kind)} report ${esc(r.id)}</title>
<style>body{font:14px/1.4 sans-serif;margin:2em;color:#111}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:3px 8px;text-align:left;vertical-align:top}code{font-size:12px}h1{font-size:20px}</style>
</head><body>
<h1>Connector DR ${esc(r.kind)} report: ${esc(r.id)}</h1>
<p>Tenant <b>${esc(r.tenant)}</b>, segment <b>${esc(r.segment)}</b>; window ${esc(r.window.from)} to ${esc(r.window.to)}; built ${esc(r.builtAt)}.</p>
<h2>Figures</h2><table>${fig}</table>
<h2>Timeline</h2><table><tr><th>time (UTC)</th><th>source</th><th>event</th><th>audit seq</th><th>details</th></tr>${rows}</table>
<h2>Evidence</h2>
<p>Built from these records of the headend's audit log (SHA-256 of each line, the hash its successor's <code>prev</code> holds); the chain's head at build time was seq ${esc(r.audit.head?.seq ?? 'n/a')}, <code>${esc(r.audit.head?.hash ?? '')}</code>.</p>
<table><tr><th>seq</th><th>event</th><th>sha256</th></tr>${recs}</table>
<p>Report hash (SHA-256 of the JSON report without this field): <code>${esc(r.reportHash)}</code>. Check with <code>connector drill verify-report --report FILE.json --audit-log AUDIT.jsonl</code> and <code>connector audit verify</code>.</p>
</body></html>
`;
}
