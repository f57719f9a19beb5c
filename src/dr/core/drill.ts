// SPDX-License-Identifier: UNLICENSED
// Drills, pure (issue 15, item 1): the drill book (every drill, its state and timeline), starting one
// (in place on the tenant's segment, or in a sandbox segment of its own), probes, the end and the TTL.
// Registry and book in, new registry and book out; time is an argument.
//  - In place: the drill VM joins the tenant's segment with a different IP. Nothing changes in the
//    registry; the Connector's split-brain guard keeps a VM that takes a production address from
//    disturbing the LAN (docs/l2-policy.md).
//  - Sandbox: a segment `drill-<id>` with its own VNI mirrors the tenant segment's VTEPs (same addressing
//    on the VMs), flagged `sandbox` so no device session is ever admitted to it (registry.ts), with no
//    gateway (outbound blocked unless the drill allows it), removed when the drill ends or its TTL passes.
import { ConnectorError } from '../../shared/errors.js';
import { parseRegistry, type Registry, type Segment } from '../../shared/registry/registry.js';

export type DrillKind = 'in-place' | 'sandbox';
export type DrillState = 'running' | 'ended' | 'expired';

export interface TimelineEvent {
  /** ISO time. */
  t: string;
  event: string;
  [k: string]: unknown;
}

export interface Drill {
  id: string;
  tenant: string;
  kind: DrillKind;
  /** The tenant segment the drill tests (in place: the drill VM joins it; sandbox: the one mirrored). */
  segment: string;
  /** Sandbox only: the drill's own segment and VNI. */
  sandboxSegment?: string;
  vni: number;
  /** The drill VM's address (different from production for an in-place drill). */
  vmIp?: string;
  allowOutbound: boolean;
  ttlS: number;
  startedAt: string;
  expiresAt: string;
  endedAt?: string;
  state: DrillState;
  timeline: TimelineEvent[];
}

/** A full-site failover, kept in the same book so a report can be built for it. */
export interface FailoverRecord {
  id: string;
  tenant: string;
  segment: string;
  gateway: string;
  startedAt: string;
  endedAt?: string;
  timeline: TimelineEvent[];
}

export interface DrillBook {
  version: 1;
  drills: Drill[];
  failovers?: FailoverRecord[];
}

export const EMPTY_BOOK: DrillBook = { version: 1, drills: [] };

/** Sandbox VNIs come from the top of the 24-bit space, away from tenants' production VNIs. */
export const SANDBOX_VNI_FIRST = 0xf00000;
export const SANDBOX_VNI_LAST = 0xffffff;
export const DEFAULT_TTL_S = 4 * 3600;
export const MAX_TTL_S = 7 * 24 * 3600;

export interface DrillSpec {
  tenant: string;
  segment?: string | undefined;
  kind: DrillKind;
  vmIp?: string | undefined;
  ttlS?: number | undefined;
  allowOutbound?: boolean | undefined;
}

const fail = (msg: string): never => {
  throw new ConnectorError('CK_ERR_DRILL', msg);
};

export function parseDrillBook(doc: unknown): DrillBook {
  const d = doc as Partial<DrillBook> | null;
  if (!d || d.version !== 1 || !Array.isArray(d.drills)) fail('drill book: expected {"version": 1, "drills": [...]}');
  return d as DrillBook;
}

function findDrill(book: DrillBook, id: string): Drill {
  return book.drills.find((x) => x.id === id) ?? fail(`no drill "${id}" (connector drill status lists them)`);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A running drill whose TTL has passed counts as expired from that moment, swept or not. */
export function effectiveState(d: Drill, nowMs: number): DrillState {
  return d.state === 'running' && Date.parse(d.expiresAt) <= nowMs ? 'expired' : d.state;
}

function freeSandboxVni(reg: Registry): number {
  const used = new Set<number>();
  for (const t of Object.values(reg.tenants)) for (const s of Object.values(t.segments)) used.add(s.vni);
  for (let v = SANDBOX_VNI_FIRST; v <= SANDBOX_VNI_LAST; v++) if (!used.has(v)) return v;
  return fail('no free sandbox VNI');
}

function withSegment(reg: Registry, tenant: string, name: string, seg: Segment | undefined): Registry {
  const t = reg.tenants[tenant] ?? fail(`unknown tenant "${tenant}"`);
  const segments: Record<string, Segment> = { ...t.segments };
  if (seg) segments[name] = seg;
  else delete segments[name];
  return parseRegistry({ ...reg, tenants: { ...reg.tenants, [tenant]: { ...t, segments } } });
}

export function startDrill(
  book: DrillBook,
  reg: Registry,
  spec: DrillSpec,
  nowMs: number,
  id: string,
): { book: DrillBook; registry: Registry; drill: Drill } {
  const t = reg.tenants[spec.tenant] ?? fail(`unknown tenant "${spec.tenant}"`);
  const names = Object.keys(t.segments)
    .filter((n) => !t.segments[n]?.sandbox)
    .sort();
  const segment = spec.segment ?? names[0] ?? fail(`tenant "${spec.tenant}" has no segment`);
  const prod = t.segments[segment];
  if (!prod || prod.sandbox) fail(`tenant "${spec.tenant}" has no production segment "${segment}"`);
  const ttlS = spec.ttlS ?? DEFAULT_TTL_S;
  if (!Number.isInteger(ttlS) || ttlS < 60 || ttlS > MAX_TTL_S) fail(`ttl ${ttlS} s is outside 60..${MAX_TTL_S}`);
  const busy = book.drills.find(
    (x) => effectiveState(x, nowMs) === 'running' && x.tenant === spec.tenant && x.segment === segment && x.kind === spec.kind,
  );
  if (busy) fail(`drill ${busy.id} (${busy.kind}) already runs on ${spec.tenant}/${segment}; end it first`);
  const expiresAt = iso(nowMs + ttlS * 1000);
  let registry = reg;
  let vni = prod?.vni ?? 0;
  let sandboxSegment: string | undefined;
  if (spec.kind === 'sandbox') {
    vni = freeSandboxVni(reg);
    sandboxSegment = `drill-${id}`;
    registry = withSegment(reg, spec.tenant, sandboxSegment, {
      vni,
      vteps: prod?.vteps ?? [],
      multiSite: false,
      allowDhcpFromDc: prod?.allowDhcpFromDc ?? false,
      vtepPathMtu: prod?.vtepPathMtu ?? 1550,
      sandbox: { drill: id, expiresAt, outbound: spec.allowOutbound ?? false },
    });
  }
  const drill: Drill = {
    id,
    tenant: spec.tenant,
    kind: spec.kind,
    segment,
    ...(sandboxSegment ? { sandboxSegment } : {}),
    vni,
    ...(spec.vmIp ? { vmIp: spec.vmIp } : {}),
    allowOutbound: spec.allowOutbound ?? false,
    ttlS,
    startedAt: iso(nowMs),
    expiresAt,
    state: 'running',
    timeline: [{ t: iso(nowMs), event: 'drill-start', kind: spec.kind, segment, vni, ...(sandboxSegment ? { sandboxSegment } : {}) }],
  };
  return { book: { ...book, drills: [...book.drills, drill] }, registry, drill };
}

function finish(
  book: DrillBook,
  reg: Registry,
  d: Drill,
  nowMs: number,
  state: 'ended' | 'expired',
  reason: string,
): { book: DrillBook; registry: Registry } {
  const registry =
    d.sandboxSegment && reg.tenants[d.tenant]?.segments[d.sandboxSegment] ? withSegment(reg, d.tenant, d.sandboxSegment, undefined) : reg;
  // An expired drill ends at its expiry time, however late the sweep runs.
  const at = state === 'expired' ? Math.min(nowMs, Date.parse(d.expiresAt)) : nowMs;
  const ended: Drill = { ...d, state, endedAt: iso(at), timeline: [...d.timeline, { t: iso(at), event: 'drill-end', reason }] };
  return { book: { ...book, drills: book.drills.map((x) => (x.id === d.id ? ended : x)) }, registry };
}

export function endDrill(book: DrillBook, reg: Registry, id: string, nowMs: number): { book: DrillBook; registry: Registry } {
  const d = findDrill(book, id);
  const state = effectiveState(d, nowMs);
  if (state === 'expired') return finish(book, reg, d, nowMs, 'expired', 'ttl');
  if (state !== 'running') fail(`drill ${id} already ${d.state}`);
  return finish(book, reg, d, nowMs, 'ended', 'operator');
}

/** Ends every drill whose TTL has passed; `expired` lists them. */
export function sweepExpired(book: DrillBook, reg: Registry, nowMs: number): { book: DrillBook; registry: Registry; expired: string[] } {
  let cur = { book, registry: reg };
  const expired: string[] = [];
  for (const d of book.drills) {
    if (d.state === 'running' && effectiveState(d, nowMs) === 'expired') {
      cur = finish(cur.book, cur.registry, d, nowMs, 'expired', 'ttl');
      expired.push(d.id);
    }
  }
  return { ...cur, expired };
}

/** Appends timeline events (probe results, observations) to a running drill. */
export function recordEvents(book: DrillBook, id: string, events: readonly TimelineEvent[], nowMs: number): DrillBook {
  const d = findDrill(book, id);
  if (effectiveState(d, nowMs) !== 'running') fail(`drill ${id} is ${effectiveState(d, nowMs)}; probes go into running drills`);
  return { ...book, drills: book.drills.map((x) => (x.id === id ? { ...x, timeline: [...x.timeline, ...events] } : x)) };
}

/** What `drill status` and the API show: the drill with its effective state and the time left. */
export function drillView(d: Drill, nowMs: number): Drill & { remainingS: number } {
  const state = effectiveState(d, nowMs);
  return { ...d, state, remainingS: state === 'running' ? Math.max(0, Math.round((Date.parse(d.expiresAt) - nowMs) / 1000)) : 0 };
}

export function getDrill(book: DrillBook, id: string): Drill {
  return findDrill(book, id);
}
