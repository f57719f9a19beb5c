// SPDX-License-Identifier: UNLICENSED
// The per-segment metric families, summed per tenant (the default) or one series per segment, with
// zero-valued series left out. Sums are plain numbers first, one entry per label set: the label strings
// are built once per tenant (or segment), not once per counter, which is what made a 5,000-segment scrape
// hold the loop. Pure.
import type { SegmentInfo, SegmentStats } from './forwarder.js';
import type { Labels, Metrics } from './metrics.js';

const FAMILIES = [
  'connector_headend_sessions',
  'connector_headend_mac_entries',
  'connector_headend_frames_total',
  'connector_headend_bytes_total',
];
const DIRS = ['tunnel-in', 'tunnel-out', 'vtep-in', 'vtep-out'] as const;

export function setSegmentMetrics(
  m: Metrics,
  segments: Iterable<{ info: SegmentInfo; stats: SegmentStats; macs: number; sessions: number }>,
  detail: 'tenant' | 'segment',
): void {
  for (const f of FAMILIES) m.reset(f);
  const rows = new Map<string, { labels: Labels; v: number[] }>();
  for (const { info, stats, macs, sessions: n } of segments) {
    const key = detail === 'segment' ? String(info.vni) : (info.name.split('/')[0] ?? info.name);
    let r = rows.get(key);
    if (!r) {
      r = { labels: detail === 'segment' ? { vni: info.vni, segment: info.name } : { tenant: key }, v: new Array<number>(10).fill(0) };
      rows.set(key, r);
    }
    const v = r.v;
    v[0] = (v[0] ?? 0) + n;
    v[1] = (v[1] ?? 0) + macs;
    const byDir = [stats.tunnelIn, stats.tunnelOut, stats.vtepIn, stats.vtepOut];
    for (let d = 0; d < 4; d++) {
      v[2 + d] = (v[2 + d] ?? 0) + (byDir[d]?.frames ?? 0);
      v[6 + d] = (v[6 + d] ?? 0) + (byDir[d]?.bytes ?? 0);
    }
  }
  for (const { labels, v } of rows.values()) {
    if (v[0]) m.set('connector_headend_sessions', labels, v[0]);
    if (v[1]) m.set('connector_headend_mac_entries', labels, v[1]);
    for (let d = 0; d < 4; d++) {
      const dir = DIRS[d] as string;
      if (v[2 + d]) m.set('connector_headend_frames_total', { ...labels, direction: dir }, v[2 + d] ?? 0);
      if (v[6 + d]) m.set('connector_headend_bytes_total', { ...labels, direction: dir }, v[6 + d] ?? 0);
    }
  }
}
