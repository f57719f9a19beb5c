// SPDX-License-Identifier: UNLICENSED
// Drills (issue 15, item 1), pure: in place and sandbox, one per segment and kind, the sandbox segment
// never admits a device and disappears at the end or after its TTL, probes in the timeline, the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitDevice, parseRegistry } from '../../../../src/shared/registry/registry.js';
import { admit } from '../../../../src/headend/core/admission.js';
import { failoverView, getFailover } from '../../../../src/dr/core/failover.js';
import { routeDrillApi, type DrillOps } from '../../../../src/dr/core/api.js';
import {
  EMPTY_BOOK,
  SANDBOX_VNI_FIRST,
  drillView,
  endDrill,
  recordEvents,
  startDrill,
  sweepExpired,
  type DrillBook,
} from '../../../../src/dr/core/drill.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const REG = parseRegistry({
  version: 1,
  tenants: { acme: { segments: { lan: { vni: 100, vteps: ['10.98.0.2'], allowDhcpFromDc: true } } } },
  devices: { 'CN-1': { state: 'claimed', tenant: 'acme' } },
});

test('sandbox: its own VNI, the tenant VTEPs, never a device; removed at the end', () => {
  const s = startDrill(EMPTY_BOOK, REG, { tenant: 'acme', kind: 'sandbox', ttlS: 3600 }, T0, 'd1');
  const seg = s.registry.tenants['acme']?.segments['drill-d1'];
  assert.ok(seg);
  assert.equal(seg.vni, SANDBOX_VNI_FIRST);
  assert.deepEqual(seg.vteps, ['10.98.0.2']);
  assert.equal(seg.sandbox?.outbound, false, 'outbound blocked by default');
  assert.equal(s.drill.vni, SANDBOX_VNI_FIRST);
  // The device keeps its production segment; no registry change can point it at the sandbox.
  const a = admitDevice(s.registry, 'CN-1');
  assert.ok(a.ok && a.segmentName === 'lan');
  assert.throws(
    () => parseRegistry({ ...s.registry, devices: { 'CN-1': { state: 'claimed', tenant: 'acme', segment: 'drill-d1' } } }),
    /sandbox/,
  );
  assert.throws(
    () =>
      parseRegistry({
        ...s.registry,
        devices: { 'CN-1': { state: 'claimed', tenant: 'acme', segment: 'lan', vlans: { '10': 'drill-d1' } } },
      }),
    /sandbox/,
  );
  // A device without a segment whose tenant has only a sandbox left is refused, not put in the sandbox.
  const only = parseRegistry({
    version: 1,
    tenants: { t: { segments: { 'drill-x': { vni: 5, sandbox: { drill: 'x', expiresAt: '2027-01-01T00:00:00Z' } } } } },
    devices: { 'D-1': { state: 'claimed', tenant: 't' } },
  });
  assert.deepEqual(admit(only, { serial: 'D-1', fingerprint: '', remote: '' }, 's'), { ok: false, reason: 'no-segment' });

  // A second sandbox drill on the same segment waits; an in-place drill may run beside it.
  assert.throws(
    () => startDrill(s.book, s.registry, { tenant: 'acme', kind: 'sandbox' }, T0 + 1, 'd2'),
    (e: unknown) => (e as { code?: string }).code === 'CK_ERR_DRILL',
  );
  const ip = startDrill(s.book, s.registry, { tenant: 'acme', kind: 'in-place', vmIp: '192.168.10.77' }, T0 + 1, 'd3');
  assert.equal(ip.registry, s.registry, 'an in-place drill changes nothing in the registry');
  assert.equal(ip.drill.vni, 100);

  const e = endDrill(ip.book, ip.registry, 'd1', T0 + 60_000);
  assert.equal(e.registry.tenants['acme']?.segments['drill-d1'], undefined, 'the sandbox segment is gone');
  const d1 = e.book.drills.find((d) => d.id === 'd1');
  assert.equal(d1?.state, 'ended');
  assert.deepEqual(
    d1?.timeline.map((x) => x.event),
    ['drill-start', 'drill-end'],
  );
  assert.throws(() => endDrill(e.book, e.registry, 'd1', T0 + 61_000), /already ended/);
  assert.throws(() => endDrill(e.book, e.registry, 'nope', T0), /no drill "nope"/);
});

test('TTL: a drill expires by itself at its expiry time, and its sandbox goes with it', () => {
  const s = startDrill(EMPTY_BOOK, REG, { tenant: 'acme', kind: 'sandbox', ttlS: 600 }, T0, 'd1');
  assert.equal(drillView(s.drill, T0 + 599_000).state, 'running');
  assert.equal(drillView(s.drill, T0 + 599_000).remainingS, 1);
  assert.equal(drillView(s.drill, T0 + 600_000).state, 'expired');
  const early = sweepExpired(s.book, s.registry, T0 + 599_999);
  assert.deepEqual(early.expired, []);
  const late = sweepExpired(s.book, s.registry, T0 + 3_600_000);
  assert.deepEqual(late.expired, ['d1']);
  assert.equal(late.registry.tenants['acme']?.segments['drill-d1'], undefined);
  const d = late.book.drills[0];
  assert.equal(d?.state, 'expired');
  assert.equal(d?.endedAt, new Date(T0 + 600_000).toISOString(), 'ended at the expiry, not at the sweep');
  assert.throws(() => startDrill(EMPTY_BOOK, REG, { tenant: 'acme', kind: 'sandbox', ttlS: 10 }, T0, 'x'), /ttl/);
});

test('probes go into the timeline of a running drill only', () => {
  const s = startDrill(EMPTY_BOOK, REG, { tenant: 'acme', kind: 'in-place', vmIp: '192.168.10.77', ttlS: 600 }, T0, 'd1');
  const b = recordEvents(s.book, 'd1', [{ t: new Date(T0 + 5).toISOString(), event: 'probe', ok: true }], T0 + 5);
  assert.deepEqual(
    b.drills[0]?.timeline.map((x) => x.event),
    ['drill-start', 'probe'],
  );
  assert.throws(() => recordEvents(b, 'd1', [], T0 + 600_000), /expired/);
});

test('API: list, start, get, end; bad bodies are 400, unknown ids 404, conflicts 409', async () => {
  let book: DrillBook = EMPTY_BOOK;
  let reg = REG;
  let n = 0;
  const ops: DrillOps = {
    list: async () => book.drills.map((d) => drillView(d, T0)),
    get: async (id) => {
      const d = book.drills.find((x) => x.id === id);
      if (!d) return endDrill(book, reg, id, T0);
      return drillView(d, T0);
    },
    start: async (spec) => {
      const r = startDrill(book, reg, spec, T0, `d${++n}`);
      book = r.book;
      reg = r.registry;
      return r.drill;
    },
    report: async (id) => ({ report: { id }, html: `<p>${id}</p>` }),
    failovers: async () => (book.failovers ?? []).map(failoverView),
    failover: async (id) => failoverView(getFailover(book, id)),
    end: async (id) => {
      const r = endDrill(book, reg, id, T0);
      book = r.book;
      reg = r.registry;
      return book.drills.find((x) => x.id === id);
    },
  };
  assert.deepEqual(await routeDrillApi(ops, 'GET', '/v1/drills', undefined), { status: 200, body: { drills: [] } });
  const started = await routeDrillApi(ops, 'POST', '/v1/drills', { tenant: 'acme', kind: 'sandbox', ttlS: 600 });
  assert.equal(started.status, 201);
  assert.equal((started.body as { id: string }).id, 'd1');
  assert.equal((await routeDrillApi(ops, 'POST', '/v1/drills', { tenant: 'acme', kind: 'sandbox' })).status, 409);
  assert.equal((await routeDrillApi(ops, 'POST', '/v1/drills', { tenant: 'acme', kind: 'other' })).status, 400);
  assert.equal((await routeDrillApi(ops, 'POST', '/v1/drills', { tenant: 'acme', kind: 'sandbox', vni: 5 })).status, 400);
  assert.equal((await routeDrillApi(ops, 'GET', '/v1/drills/zz', undefined)).status, 404);
  const ended = await routeDrillApi(ops, 'POST', '/v1/drills/d1/end', undefined);
  assert.equal(ended.status, 200);
  assert.equal((ended.body as { state: string }).state, 'ended');
  assert.equal((await routeDrillApi(ops, 'DELETE', '/v1/drills/d1', undefined)).status, 405);

  // Failovers are listed with their state and report; they are started and ended on the command line only.
  const fo = { id: 'f1', tenant: 'acme', segment: 'lan', gateway: '192.168.10.1/24', startedAt: new Date(T0).toISOString(), timeline: [] };
  book = { ...book, failovers: [fo, { ...fo, id: 'f2', endedAt: new Date(T0 + 1).toISOString() }] };
  const list = await routeDrillApi(ops, 'GET', '/v1/failovers', undefined);
  assert.deepEqual(
    (list.body as { failovers: { id: string; state: string }[] }).failovers.map((f) => `${f.id} ${f.state}`),
    ['f1 active', 'f2 ended'],
  );
  assert.equal((await routeDrillApi(ops, 'GET', '/v1/failovers/f2/report', undefined)).status, 200);
  assert.equal((await routeDrillApi(ops, 'GET', '/v1/failovers/d1/report', undefined)).status, 404, 'a drill is not a failover');
  assert.equal((await routeDrillApi(ops, 'GET', '/v1/failovers/zz', undefined)).status, 404);
  assert.equal((await routeDrillApi(ops, 'POST', '/v1/failovers', { tenant: 'acme' })).status, 405);
});
