// SPDX-License-Identifier: UNLICENSED
// Full-site failover, pure (issue 15, item 2): is the site gone (its units' sessions down past a
// threshold, from the headend's audit records), the gateway spec, and the registry marks. The order is
// the safety: `start` fences the site's units off the segment (registry `failover`, admission refuses
// them) before the DC gateway takes the router's address; `end` withdraws the gateway before it lifts the
// fence, so the LAN and the DC gateway are never bridged together.
import { ConnectorError } from '../../shared/errors.js';
import { parseRegistry, type Registry, type Segment } from '../../shared/registry/registry.js';
import type { DrillBook, FailoverRecord } from './drill.js';

const isIPv4 = (s: string): boolean => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s);

export interface GatewaySpec {
  ip: string;
  prefix: number;
  mac?: string;
}

const fail = (msg: string): never => {
  throw new ConnectorError('CK_ERR_DRILL', msg);
};

/** `192.168.1.1/24[,02:00:00:00:01:01]` (prefix default 24). */
export function parseGatewaySpec(text: string): GatewaySpec {
  const [addr = '', mac] = text.split(',');
  const [ip = '', p] = addr.split('/');
  const prefix = p === undefined ? 24 : Number(p);
  if (!isIPv4(ip) || !Number.isInteger(prefix) || prefix < 1 || prefix > 30)
    fail(`gateway "${text}" must be IPv4[/prefix][,mac], e.g. 192.168.1.1/24`);
  if (mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) fail(`gateway MAC "${mac}" is not aa:bb:cc:dd:ee:ff`);
  if (mac !== undefined && (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) fail(`gateway MAC "${mac}" is a multicast address`);
  return { ip, prefix, ...(mac ? { mac: mac.toLowerCase() } : {}) };
}

/** The audit records the decision needs (the headend's audit log, JSON lines). */
export interface SessionRecord {
  time: string;
  event: string;
  serial?: string;
  tenant?: string;
  segment?: string;
}

export type SiteDown = { down: true; sinceMs: number; downForS: number } | { down: false; reason: string };

/**
 * Is the site gone: every unit of the tenant that was ever connected on the segment has its last
 * session closed, the latest close at least `thresholdS` ago. A unit connected now means the site is up.
 */
export function siteDown(records: readonly SessionRecord[], tenant: string, segment: string, nowMs: number, thresholdS: number): SiteDown {
  const last = new Map<string, SessionRecord>();
  for (const r of records) {
    if ((r.event === 'connect' || r.event === 'disconnect') && r.tenant === tenant && r.segment === segment && r.serial)
      last.set(r.serial, r);
  }
  if (last.size === 0) return { down: false, reason: `no session of ${tenant}/${segment} in the audit log` };
  let since = 0;
  for (const [serial, r] of last) {
    if (r.event === 'connect') return { down: false, reason: `unit ${serial} is connected (since ${r.time})` };
    since = Math.max(since, Date.parse(r.time));
  }
  const downForS = Math.floor((nowMs - since) / 1000);
  if (downForS < thresholdS) return { down: false, reason: `the site is down for ${downForS} s only; the threshold is ${thresholdS} s` };
  return { down: true, sinceMs: since, downForS };
}

function segmentOf(reg: Registry, tenant: string, segment: string | undefined): [string, Segment] {
  const t = reg.tenants[tenant] ?? fail(`unknown tenant "${tenant}"`);
  const name =
    segment ??
    Object.keys(t.segments)
      .sort()
      .find((n) => !t.segments[n]?.sandbox) ??
    fail(`tenant "${tenant}" has no segment`);
  const seg = t.segments[name];
  if (!seg || seg.sandbox) return fail(`tenant "${tenant}" has no production segment "${name}"`);
  return [name, seg];
}

export function resolveSegment(reg: Registry, tenant: string, segment: string | undefined): string {
  return segmentOf(reg, tenant, segment)[0];
}

function withFailover(reg: Registry, tenant: string, name: string, failover: Segment['failover']): Registry {
  const t = reg.tenants[tenant] ?? fail(`unknown tenant "${tenant}"`);
  const { failover: _old, ...rest } = t.segments[name] ?? fail(`no segment ${name}`);
  const seg: Segment = failover ? { ...rest, failover } : rest;
  return parseRegistry({ ...reg, tenants: { ...reg.tenants, [tenant]: { ...t, segments: { ...t.segments, [name]: seg } } } });
}

/** Marks the segment as failed over: admission refuses the site's units from now on (the fence). */
export function fenceSite(reg: Registry, tenant: string, segment: string | undefined, gateway: GatewaySpec, nowMs: number): Registry {
  const [name, seg] = segmentOf(reg, tenant, segment);
  if (seg.failover) fail(`${tenant}/${name} is already failed over (since ${seg.failover.since}); end it first`);
  return withFailover(reg, tenant, name, {
    gateway: `${gateway.ip}/${gateway.prefix}${gateway.mac ? ',' + gateway.mac : ''}`,
    since: new Date(nowMs).toISOString(),
  });
}

/** Lifts the fence; call only once the DC gateway has been withdrawn. */
export function unfenceSite(reg: Registry, tenant: string, segment: string | undefined): Registry {
  const [name, seg] = segmentOf(reg, tenant, segment);
  if (!seg.failover) fail(`${tenant}/${name} is not failed over`);
  return withFailover(reg, tenant, name, undefined);
}

/** A failover as the console lists it: active until `connector failover end` hands the site back. */
export function failoverView(f: FailoverRecord): FailoverRecord & { state: 'active' | 'ended' } {
  return { ...f, state: f.endedAt ? 'ended' : 'active' };
}

export function getFailover(book: DrillBook, id: string): FailoverRecord {
  const f = (book.failovers ?? []).find((x) => x.id === id);
  if (!f) throw new ConnectorError('CK_ERR_USAGE', `no failover "${id}"`);
  return f;
}
