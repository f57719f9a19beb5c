// SPDX-License-Identifier: UNLICENSED
// DR operations (issue 15): `connector drill start|status|end|probe|serve`, `connector failover start|end`. Wiring only: the drill book
// and registry files, the probe runner, the HTTP API, the wall clock. Nothing runs at import.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnectorError, UsageError } from '../shared/errors.js';
import { readRegistryFile } from '../shared/registry/registry-file.js';
import { createLogger } from '../shared/log.js';
import type { DrillOps } from './core/api.js';
import {
  drillView,
  endDrill,
  getDrill,
  recordEvents,
  startDrill,
  sweepExpired,
  type DrillBook,
  type DrillKind,
  type DrillSpec,
  type TimelineEvent,
} from './core/drill.js';
import { buildReport, renderReportHtml, verifyReport, type ReportDoc } from './core/report.js';
import { failoverView, fenceSite, getFailover, parseGatewaySpec, resolveSegment, siteDown, unfenceSite } from './core/failover.js';
import { readSessionRecords } from './adapters/audit-read.js';
import { gatewayName, raiseGateway, withdrawGateway, type GatewayPlacement } from './adapters/gateway.js';

export type { GatewayPlacement };
import { serveDrillApi } from './adapters/http-api.js';
import { runProbe } from './adapters/probe.js';
import { drillFiles, readBoth, updateBoth, type DrillFiles } from './adapters/store.js';

function out(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

export interface DrillFileOptions {
  registry?: string | undefined;
  book?: string | undefined;
}

/**
 * The registry file drills and failovers edit (with the drill book beside it). They keep a book of their
 * own next to the registry and fence sites in one change of both, which the PostgreSQL backend does not
 * offer yet: a database registry is refused rather than read as an empty file.
 */
function registryFileOf(o: { registry?: string | undefined }): string {
  const reg = o.registry ?? process.env['CONNECTOR_REGISTRY'];
  if (!reg) throw new UsageError('--registry FILE is required (or set CONNECTOR_REGISTRY)');
  if (/^postgres(ql)?:\/\//i.test(reg)) {
    throw new UsageError(
      `drills and failovers need a registry file, not a database (${reg.replace(/:[^:@/]*@/, ':***@')}): the PostgreSQL backend is not supported by them yet`,
    );
  }
  return reg;
}

function files(o: DrillFileOptions): DrillFiles {
  return drillFiles(registryFileOf(o), o.book);
}

/** The drill operations over the files; every call first ends drills whose TTL has passed. */
export function drillOps(f: DrillFiles, now: () => number = Date.now, auditLog?: string): DrillOps {
  const sweep = async (): Promise<void> => {
    const { book } = readBoth(f);
    if (book.drills.some((d) => d.state === 'running' && Date.parse(d.expiresAt) <= now())) {
      const r = await updateBoth(f, (b, reg) => sweepExpired(b, reg, now()));
      for (const id of r.expired) await withdrawSandboxGateway(getDrill(readBoth(f).book, id));
    }
  };
  return {
    async list() {
      await sweep();
      return readBoth(f).book.drills.map((d) => drillView(d, now()));
    },
    async get(id) {
      await sweep();
      return drillView(getDrill(readBoth(f).book, id), now());
    },
    async start(spec) {
      await sweep();
      const id = randomBytes(4).toString('hex');
      const r = await updateBoth(f, (b, reg) => startDrill(b, reg, spec, now(), id));
      return drillView(r.drill, now());
    },
    async report(id) {
      if (auditLog === undefined)
        throw new ConnectorError('CK_ERR_DRILL', 'reports need the headend audit log: start drill serve with --audit-log');
      const report = reportOf(readBoth(f).book, id, readTextLines(auditLog), now());
      return { report, html: renderReportHtml(report) };
    },
    async failovers() {
      return (readBoth(f).book.failovers ?? []).map(failoverView);
    },
    async failover(id) {
      return failoverView(getFailover(readBoth(f).book, id));
    },
    async end(id) {
      await sweep();
      await updateBoth(f, (b, reg) => endDrill(b, reg, id, now()));
      const d = getDrill(readBoth(f).book, id);
      await withdrawSandboxGateway(d);
      return drillView(d, now());
    },
  };
}

/** A sandbox drill's gateway goes with the drill (a no-op when it never had one). */
async function withdrawSandboxGateway(d: { tenant: string; sandboxSegment?: string | undefined }): Promise<void> {
  if (d.sandboxSegment) await withdrawGateway(gatewayName(d.tenant, d.sandboxSegment));
}

/**
 * `connector drill gateway`: gives a running sandbox drill its gateway (the production router's address)
 * on the sandbox segment in the datacentre. It routes out, with NAT, only when the drill was started with
 * `--allow-outbound`; otherwise the restored VMs find their gateway and nothing leaves.
 */
export async function drillGateway(o: DrillFileOptions & { id: string; gateway: string; placement: GatewayPlacement }): Promise<number> {
  const f = files(o);
  const d = getDrill(readBoth(f).book, o.id);
  if (d.kind !== 'sandbox' || !d.sandboxSegment) throw new UsageError(`drill ${o.id} is ${d.kind}: only a sandbox drill gets a gateway`);
  const gw = parseGatewaySpec(o.gateway);
  const { mac } = await raiseGateway(gatewayName(d.tenant, d.sandboxSegment), gw, o.placement, d.allowOutbound);
  const ev: TimelineEvent = {
    t: new Date().toISOString(),
    event: 'gateway-up',
    gateway: `${gw.ip}/${gw.prefix}`,
    mac,
    outbound: d.allowOutbound,
  };
  try {
    await updateBoth(f, (b, r) => ({ book: recordEvents(b, o.id, [ev], Date.now()), registry: r }));
  } catch (e) {
    await withdrawSandboxGateway(d); // the drill ended meanwhile: no gateway outlives it
    throw e;
  }
  out(ev);
  return 0;
}

export async function drillStart(o: DrillFileOptions & Omit<DrillSpec, 'kind'> & { kind: string }): Promise<number> {
  if (o.kind !== 'in-place' && o.kind !== 'sandbox') throw new UsageError(`--kind must be in-place or sandbox, not "${o.kind}"`);
  out(await drillOps(files(o)).start({ ...o, kind: o.kind as DrillKind }));
  return 0;
}

export async function drillStatus(o: DrillFileOptions & { id?: string | undefined }): Promise<number> {
  const ops = drillOps(files(o));
  out(o.id ? await ops.get(o.id) : { drills: await ops.list() });
  return 0;
}

export async function drillEnd(o: DrillFileOptions & { id: string }): Promise<number> {
  out(await drillOps(files(o)).end(o.id));
  return 0;
}

/**
 * ARP + ICMP from one side to a target, recorded in the drill's timeline. `side` says where from: 'lan'
 * (the Connector's LAN side toward the drill VM) or 'dc' (the drill VM's side toward a LAN host).
 * Exit 0 when the target answered both, 1 otherwise.
 */
export async function drillProbe(
  o: DrillFileOptions & { id: string; target: string; ifname: string; netns?: string | undefined; side: string; count: number },
): Promise<number> {
  if (o.side !== 'lan' && o.side !== 'dc') throw new UsageError(`--side must be lan or dc, not "${o.side}"`);
  const f = files(o);
  getDrill(readBoth(f).book, o.id);
  const started = Date.now();
  const p = await runProbe({ netns: o.netns, ifname: o.ifname, target: o.target, count: o.count, timeoutS: 2 });
  const ok = p.arp !== null && p.icmp.received > 0;
  const ev: TimelineEvent = {
    t: new Date(started).toISOString(),
    event: 'probe',
    side: o.side,
    target: o.target,
    ok,
    arp: p.arp,
    icmp: p.icmp,
    ...(p.errors.length ? { errors: p.errors } : {}),
  };
  await updateBoth(f, (b, r) => ({ book: recordEvents(b, o.id, [ev], Date.now()), registry: r }));
  out(ev);
  return ok ? 0 : 1;
}

/** The JSON API for the console, and the TTL sweep (every 5 s), until SIGTERM/SIGINT. */
export async function drillServe(o: DrillFileOptions & { host: string; port: number; auditLog?: string | undefined }): Promise<number> {
  const log = createLogger({ level: 'info', format: 'json', base: { component: 'dr' } });
  const f = files(o);
  const ops = drillOps(f, Date.now, o.auditLog);
  const api = await serveDrillApi({ host: o.host, port: o.port, ops, log });
  log.info('drill API listening', { address: `${api.address.address}:${api.address.port}` });
  const timer = setInterval(() => {
    updateBoth(f, (b, r) => sweepExpired(b, r, Date.now()))
      .then(async (r) => {
        for (const id of r.expired) await withdrawSandboxGateway(getDrill(readBoth(f).book, id));
        if (r.expired.length) log.info('drills expired', { ids: r.expired.join(',') });
      })
      .catch((e: unknown) => log.error('drill sweep failed', { error: String(e) }));
  }, 5_000);
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      clearInterval(timer);
      void api.close().then(() => resolve(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export interface FailoverOptions {
  registry?: string | undefined;
  tenant: string;
  segment?: string | undefined;
}

/**
 * `connector failover start`: the site is gone (its sessions down past `downAfterS`, from the headend's
 * audit log, unless `force`); fence the site's units off the segment, then raise the DC gateway.
 */
export async function failoverStart(
  o: FailoverOptions & { gateway: string; auditLog: string; downAfterS: number; force: boolean; placement: GatewayPlacement },
): Promise<number> {
  const t0 = Date.now();
  const reg = registryFileOf(o);
  const gw = parseGatewaySpec(o.gateway);
  const segment = resolveSegment(readRegistryFile(reg), o.tenant, o.segment);
  const down = siteDown(readSessionRecords(o.auditLog), o.tenant, segment, t0, o.downAfterS);
  if (!down.down && !o.force) throw new ConnectorError('CK_ERR_DRILL', `failover refused: ${down.reason} (--force overrides)`);
  const f = drillFiles(reg);
  const id = `fo-${randomBytes(4).toString('hex')}`;
  const siteEvent: TimelineEvent = down.down
    ? { t: new Date(down.sinceMs).toISOString(), event: 'site-lost', source: 'audit' }
    : { t: new Date(t0).toISOString(), event: 'site-forced', reason: down.reason };
  const timeline: TimelineEvent[] = [siteEvent, { t: new Date(t0).toISOString(), event: 'failover-command' }];
  const gateway = `${gw.ip}/${gw.prefix}${gw.mac ? ',' + gw.mac : ''}`;
  await updateBoth(f, (b, r) => ({
    book: {
      ...b,
      failovers: [...(b.failovers ?? []), { id, tenant: o.tenant, segment, gateway, startedAt: new Date(t0).toISOString(), timeline }],
    },
    registry: fenceSite(r, o.tenant, segment, gw, t0),
  }));
  timeline.push({ t: new Date().toISOString(), event: 'site-fenced' });
  const name = gatewayName(o.tenant, segment);
  const { mac } = await raiseGateway(name, gw, o.placement);
  timeline.push({ t: new Date().toISOString(), event: 'gateway-up', mac });
  await updateBoth(f, (b, r) => ({ book: withFailoverTimeline(b, id, timeline), registry: r }));
  out({ id, tenant: o.tenant, segment, gateway: `${gw.ip}/${gw.prefix}`, mac, netns: name, timeline });
  return 0;
}

/**
 * `connector failover watch`: the failover policy. Polls the headend's audit log and, once the site has
 * been down past `downAfterS`, runs `failover start` by itself and exits. Failback is never automatic:
 * the site's return must be handed over with `failover end`.
 */
export async function failoverWatch(
  o: FailoverOptions & { gateway: string; auditLog: string; downAfterS: number; pollS: number; placement: GatewayPlacement },
): Promise<number> {
  const reg = registryFileOf(o);
  parseGatewaySpec(o.gateway); // a bad spec fails now, not when the site is lost
  const segment = resolveSegment(readRegistryFile(reg), o.tenant, o.segment);
  const log = createLogger({ base: { component: 'failover-watch', tenant: o.tenant, segment } });
  log.info('watching the site', { downAfterS: o.downAfterS, pollS: o.pollS, auditLog: o.auditLog });
  let said = '';
  for (;;) {
    const down = siteDown(readSessionRecords(o.auditLog), o.tenant, segment, Date.now(), o.downAfterS);
    if (down.down) {
      log.warn('site lost: failing over', { downForS: down.downForS, since: new Date(down.sinceMs).toISOString() });
      return failoverStart({ ...o, force: false });
    }
    // One line per change of state, not per poll.
    const state = down.reason.replace(/\d+ s only/, 'N s only');
    if (state !== said) log.info('site not lost', { reason: down.reason });
    said = state;
    await new Promise((r) => setTimeout(r, o.pollS * 1_000));
  }
}

function withFailoverTimeline(b: DrillBook, id: string, timeline: TimelineEvent[]): DrillBook {
  return { ...b, failovers: (b.failovers ?? []).map((x) => (x.id === id ? { ...x, timeline: [...timeline] } : x)) };
}

/** `connector failover end`: withdraw the DC gateway first, then let the site's units back in. */
export async function failoverEnd(o: FailoverOptions): Promise<number> {
  const reg = registryFileOf(o);
  const segment = resolveSegment(readRegistryFile(reg), o.tenant, o.segment);
  const f = drillFiles(reg);
  const t0 = Date.now();
  const withdrawn = await withdrawGateway(gatewayName(o.tenant, segment));
  const gwDown = Date.now();
  const events: TimelineEvent[] = [
    { t: new Date(t0).toISOString(), event: 'failback-command' },
    { t: new Date(gwDown).toISOString(), event: 'gateway-withdrawn', withdrawn },
  ];
  let id: string | undefined;
  await updateBoth(f, (b, r) => {
    const open = (b.failovers ?? []).filter((x) => x.tenant === o.tenant && x.segment === segment && !x.endedAt).pop();
    id = open?.id;
    const registry = unfenceSite(r, o.tenant, segment);
    events.push({ t: new Date().toISOString(), event: 'site-unfenced' });
    if (!open) return { book: b, registry };
    const ended = { ...open, endedAt: new Date().toISOString(), timeline: [...open.timeline, ...events] };
    return { book: { ...b, failovers: (b.failovers ?? []).map((x) => (x.id === open.id ? ended : x)) }, registry };
  });
  out({ ...(id ? { id } : {}), tenant: o.tenant, segment, gatewayWithdrawn: withdrawn, timeline: events });
  return 0;
}

/** `connector drill report`: JSON + HTML for a drill or a failover (by id), bound to the audit log. */
/** A drill's or a failover's report (they share the book and the id space). */
function reportOf(book: ReturnType<typeof readBoth>['book'], id: string, lines: string[], nowMs: number): ReportDoc {
  const fo = (book.failovers ?? []).find((x) => x.id === id);
  return fo
    ? buildReport({ kind: 'failover', failover: fo }, lines, nowMs)
    : buildReport({ kind: 'drill', drill: getDrill(book, id) }, lines, nowMs);
}

export async function drillReport(o: DrillFileOptions & { id: string; auditLog: string; outDir: string }): Promise<number> {
  const report = reportOf(readBoth(files(o)).book, o.id, readTextLines(o.auditLog), Date.now());
  mkdirSync(o.outDir, { recursive: true });
  const json = join(o.outDir, `${o.id}.report.json`);
  const html = join(o.outDir, `${o.id}.report.html`);
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(html, renderReportHtml(report));
  out({ json, html, reportHash: report.reportHash, figures: report.figures, auditRecords: report.audit.records.length });
  return 0;
}

/** `connector drill verify-report`: exit 0 when the report matches the audit log, 1 with the problem. */
export function drillVerifyReport(o: { report: string; auditLog: string }): number {
  const verdict = verifyReport(JSON.parse(readFileSync(o.report, 'utf8')) as ReportDoc, readTextLines(o.auditLog));
  if (verdict.ok) process.stdout.write(`report OK: ${verdict.records} audit records, chain intact\n`);
  else process.stdout.write(`report NOT OK: ${verdict.problem}\n`);
  return verdict.ok ? 0 : 1;
}

function readTextLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch (e) {
    throw new ConnectorError('CK_ERR_DRILL', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}
