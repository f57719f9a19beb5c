// SPDX-License-Identifier: UNLICENSED
// DR reports (issue 15, item 4), pure: the figures from the event's timeline and the audit records, the
// binding to the audit chain (records named by seq and hash, the head), tamper detection on both sides,
// and the HTML page (self-contained, escaped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIT_GENESIS, buildAuditLine, type AuditEvent, type AuditFields } from '../../../../src/shared/audit/chain.js';
import { buildReport, renderReportHtml, verifyReport } from '../../../../src/dr/core/report.js';
import type { FailoverRecord } from '../../../../src/dr/core/drill.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

function chain(events: [number, AuditEvent, AuditFields][]): string[] {
  let head = { seq: 0, hash: AUDIT_GENESIS };
  return events.map(([s, ev, f]) => {
    const r = buildAuditLine(head, new Date(T0 + s * 1000), ev, f);
    head = r.head;
    return r.line;
  });
}

const LOG = chain([
  [0, 'connect', { serial: 'CN-1', tenant: 'acme', segment: 'lan', vni: 100 }],
  [5, 'connect', { serial: 'G-1', tenant: 'globex', segment: 'lan', vni: 200 }],
  [100, 'disconnect', { serial: 'CN-1', tenant: 'acme', segment: 'lan', vni: 100, reason: 'peer-closed' }],
  [140, 'refused', { serial: 'CN-1', reason: 'failover-active' }],
  [141, 'refused', { serial: 'X-9', reason: 'unknown-serial' }],
  [200, 'connect', { serial: 'CN-1', tenant: 'acme', segment: 'lan', vni: 100 }],
]);

const FO: FailoverRecord = {
  id: 'fo-1',
  tenant: 'acme',
  segment: 'lan',
  gateway: '192.168.1.1/24',
  startedAt: at(130),
  endedAt: at(199),
  timeline: [
    { t: at(100), event: 'site-lost', source: 'audit' },
    { t: at(130), event: 'failover-command' },
    { t: at(131), event: 'site-fenced' },
    { t: at(132), event: 'gateway-up' },
    { t: at(198), event: 'failback-command' },
    { t: at(198.5), event: 'gateway-withdrawn' },
    { t: at(199), event: 'site-unfenced' },
  ],
};

test('failover report: RTO from the audit log, the tenant audit records by hash, verified against the chain', () => {
  const r = buildReport({ kind: 'failover', failover: FO }, LOG, T0 + 300_000);
  assert.equal(r.figures['rtoMs'], 32_000, 'site lost (audit disconnect) -> DC gateway up');
  assert.equal(r.figures['siteLostAuditSeq'], 3);
  assert.equal(r.figures['commandToGatewayMs'], 2_000);
  assert.equal(r.figures['refusedWhileFailedOver'], 1);
  assert.equal(r.figures['failbackReconnectMs'], 1_500, 'gateway withdrawn -> the unit connected again');
  assert.deepEqual(
    r.audit.records.map((x) => x.seq),
    [3, 4, 6],
    "the tenant's records in the window (its unit's refusals too); another tenant's or unit's never",
  );
  assert.equal(r.audit.head?.seq, 6);
  assert.deepEqual(verifyReport(r, LOG), { ok: true, records: 3 });

  // Tampering on either side is caught.
  const edited = [...LOG];
  edited[2] = (edited[2] ?? '').replace('peer-closed', 'operator');
  assert.equal(verifyReport(r, edited).ok, false);
  assert.match(
    (
      verifyReport(
        r,
        LOG.filter((_, i) => i !== 3),
      ) as { problem: string }
    ).problem,
    /does not chain/,
  );
  assert.match((verifyReport({ ...r, figures: { ...r.figures, rtoMs: 1 } }, LOG) as { problem: string }).problem, /reportHash/);
  assert.match((verifyReport(r, LOG.slice(0, 5)) as { problem: string }).problem, /seq 6 /);
});

test('the HTML page is self-contained and escapes what it shows', () => {
  const r = buildReport({ kind: 'failover', failover: { ...FO, segment: '<script>x</script>' } }, LOG, T0 + 300_000);
  const html = renderReportHtml(r);
  assert.ok(!html.includes('<script>'), 'escaped');
  assert.ok(!/src=|href=/.test(html), 'no external resources');
  for (const rec of r.audit.records) assert.ok(html.includes(rec.hash));
  assert.ok(html.includes(r.reportHash ?? 'missing'));
});
