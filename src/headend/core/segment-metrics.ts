// SPDX-License-Identifier: UNLICENSED
// The per-segment metric families, summed per tenant (the default) or one series per segment, with
// zero-valued series left out. Sums are plain numbers first, one entry per label set: the label strings
// are built once per tenant (or segment), not once per counter. The text is built here, not in the shared
// Metrics object, so two scrapes in flight never write into each other; and it is a generator that
// offers to pause every SLICE segments or rows, so a scrape of thousands of segments can be spread over
// several turns of the loop (headend.ts) instead of holding every session's frames for all of it. Pure.
import type { SegmentInfo, SegmentStats } from './forwarder.js';
import { labelKey, type Metrics } from './metrics.js';

const SESSIONS = 'connector_headend_sessions';
const MACS = 'connector_headend_mac_entries';
const FRAMES = 'connector_headend_frames_total';
const BYTES = 'connector_headend_bytes_total';
/** The families rendered here; Metrics.render leaves them out. */
export const SEGMENT_FAMILIES: ReadonlySet<string> = new Set([SESSIONS, MACS, FRAMES, BYTES]);
const DIRS = ['tunnel-in', 'tunnel-out', 'vtep-in', 'vtep-out'] as const;
/** Segments or rows between two offers to pause. */
export const SLICE = 256;

interface Row {
  /** `{segment="a/lan",vni="100"}` or `{tenant="a"}`. */
  readonly key: string;
  /** sessions, MACs, frames by direction (4), bytes by direction (4). */
  readonly v: number[];
}

/** The label set with `direction` first: it sorts before segment, tenant and vni, as labelKey would place it. */
const withDirection = (key: string, dir: string): string => `{direction="${dir}",${key.slice(1)}`;

export function* segmentFamilies(
  m: Metrics,
  segments: Iterable<{ info: SegmentInfo; stats: SegmentStats; macs: number; sessions: number }>,
  detail: 'tenant' | 'segment',
): Generator<void, string> {
  const rows = new Map<string, Row>();
  let i = 0;
  for (const { info, stats, macs, sessions: n } of segments) {
    if (++i % SLICE === 0) yield;
    const name = detail === 'segment' ? String(info.vni) : (info.name.split('/')[0] ?? info.name);
    let r = rows.get(name);
    if (!r) {
      const key = labelKey(detail === 'segment' ? { vni: info.vni, segment: info.name } : { tenant: name });
      r = { key, v: new Array<number>(10).fill(0) };
      rows.set(name, r);
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
  // Lines are joined a slice at a time: one flat string per slice survives, not a rope of thousands of
  // pieces that every young-generation collection during the scrape would copy (10-30 ms each at 5,000).
  const parts: string[] = [];
  const family = function* (name: string, lines: (r: Row) => string): Generator<void, void> {
    let batch = [m.header(name)];
    for (const r of rows.values()) {
      const line = lines(r);
      if (line !== '') batch.push(line);
      if (batch.length < SLICE) continue;
      parts.push(batch.join(''));
      batch = [];
      yield;
    }
    parts.push(batch.join(''));
  };
  const one = (name: string, at: number) => (r: Row) => (r.v[at] ? `${name}${r.key} ${r.v[at]}\n` : '');
  const byDir = (name: string, from: number) => (r: Row) => {
    let s = '';
    for (let d = 0; d < 4; d++) if (r.v[from + d]) s += `${name}${withDirection(r.key, DIRS[d] as string)} ${r.v[from + d]}\n`;
    return s;
  };
  yield* family(SESSIONS, one(SESSIONS, 0));
  yield* family(MACS, one(MACS, 1));
  yield* family(FRAMES, byDir(FRAMES, 2));
  yield* family(BYTES, byDir(BYTES, 6));
  return parts.join('');
}
