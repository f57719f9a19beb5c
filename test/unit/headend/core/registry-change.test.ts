// SPDX-License-Identifier: UNLICENSED
// A registry change at the headend touches only what changed: the switch is told about the segments of
// tenants that are new, gone or changed, and ends up exactly as if it had been given every segment again;
// sessions whose unit, tenant and the denylist are the same entries are not checked again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closedByRegistry } from '../../../../src/headend/core/admission.js';
import { parseHeadendConfig } from '../../../../src/headend/core/config.js';
import { HeadendCore } from '../../../../src/headend/core/headend.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { Forwarder, type SegmentInfo } from '../../../../src/headend/core/forwarder.js';
import { applySegmentChange, SegmentBook } from '../../../../src/headend/core/segment-changes.js';
import { applyRegistryDelta, diffRegistry, EMPTY_INDEX, type RegistryIndex } from '../../../../src/shared/registry/registry-delta.js';
import { EMPTY_REGISTRY, parseRegistry, type Registry } from '../../../../src/shared/registry/registry.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const at = new Date(T0).toISOString();

/** Registries as the headend receives them from the parser's thread: unchanged entries keep their identity. */
function parser(): (doc: unknown) => Registry {
  let reg = EMPTY_REGISTRY;
  let index: RegistryIndex = EMPTY_INDEX;
  return (doc) => {
    const d = diffRegistry(index, parseRegistry(structuredClone(doc)));
    index = d.index;
    reg = applyRegistryDelta(reg, d.delta);
    return reg;
  };
}

function forwarder(): Forwarder {
  return new Forwarder({ send: () => {} }, { ageMs: 1_000, maxEntries: 8 }, () => 0);
}

const held = (fw: Forwarder): SegmentInfo[] => [...fw.segmentStats()].map((s) => s.info).sort((a, b) => a.vni - b.vni);
const sorted = (l: readonly SegmentInfo[]): SegmentInfo[] => [...l].sort((a, b) => a.vni - b.vni);
/** Every live segment of `reg`, as a book that has seen nothing before gives them. */
const segmentsOf = (reg: Registry, nowMs: number): readonly SegmentInfo[] => new SegmentBook().change(reg, nowMs, true).upsert;

test('segment changes: only touched tenants are looked at, and the switch ends as with every segment given again', () => {
  const doc = {
    version: 1,
    tenants: {
      acme: { segments: { lan: { vni: 100, vteps: ['192.0.2.1'] } } },
      globex: { segments: { lan: { vni: 200 }, dmz: { vni: 201 } } },
      initech: { segments: { lan: { vni: 300 } } },
    } as Record<string, { segments: Record<string, Record<string, unknown>> }>,
    devices: {},
  };
  const next = parser();
  const book = new SegmentBook();
  const incremental = forwarder();
  const whole = forwarder();
  let reg = next(doc);
  const first = book.change(reg, T0, true);
  assert.equal(first.full, true);
  applySegmentChange(incremental, first);
  whole.setSegments(segmentsOf(reg, T0));
  assert.deepEqual(held(incremental), held(whole));

  const steps: [string, () => void, string[], number[]][] = [
    ['a VTEP added', () => void (doc.tenants['acme']!.segments['lan']!['vteps'] = ['192.0.2.1', '192.0.2.2']), ['acme'], []],
    ['a segment removed', () => void delete doc.tenants['globex']!.segments['dmz'], ['globex'], [201]],
    ['a tenant added', () => void (doc.tenants['umbrella'] = { segments: { lan: { vni: 400 } } }), ['umbrella'], []],
    [
      'a VNI moved between tenants',
      () => {
        delete doc.tenants['initech']!.segments['lan'];
        doc.tenants['umbrella']!.segments['old'] = { vni: 300 };
      },
      ['initech', 'umbrella'],
      [],
    ],
    ['a tenant removed', () => void delete doc.tenants['globex'], ['globex'], [200]],
    ['nothing', () => {}, [], []],
  ];
  for (const [what, change, tenants, removed] of steps) {
    change();
    reg = next(doc);
    const c = book.change(reg, T0);
    assert.deepEqual([...c.tenants].sort(), tenants, what);
    assert.deepEqual([...c.removed].sort(), removed, what);
    applySegmentChange(incremental, c);
    whole.setSegments(segmentsOf(reg, T0));
    assert.deepEqual(held(incremental), held(whole), what);
    assert.deepEqual(held(incremental), sorted(segmentsOf(reg, T0)), what);
  }
});

test('segment changes: a sandbox past its expiry leaves the switch when every tenant is looked at again', () => {
  const reg = parseRegistry({
    version: 1,
    tenants: {
      acme: {
        segments: {
          lan: { vni: 100 },
          drill: { vni: 0xf00000, sandbox: { drill: 'a', expiresAt: new Date(T0 + 60_000).toISOString() } },
        },
      },
    },
  });
  const book = new SegmentBook();
  const fw = forwarder();
  applySegmentChange(fw, book.change(reg, T0, true));
  assert.deepEqual(
    held(fw).map((s) => s.vni),
    [100, 0xf00000],
  );
  assert.equal(book.nextExpiry(T0), T0 + 60_000);
  applySegmentChange(fw, book.change(reg, T0 + 60_000, true));
  assert.deepEqual(
    held(fw).map((s) => s.vni),
    [100],
  );
  assert.equal(book.nextExpiry(T0 + 60_000), undefined);
});

test('registry change: sessions are checked again only when their unit, tenant or the denylist changed', () => {
  const doc = {
    version: 1,
    tenants: {
      acme: { segments: { lan: { vni: 100 } } },
      globex: { segments: { lan: { vni: 200 } } },
    } as Record<string, { segments: Record<string, Record<string, unknown>> }>,
    devices: {
      'CK-1': { state: 'claimed', tenant: 'acme', updatedAt: at },
      'CK-2': { state: 'claimed', tenant: 'globex', updatedAt: at },
      'CK-3': { state: 'claimed', tenant: 'globex', updatedAt: at },
    } as Record<string, Record<string, unknown>>,
    denylist: [] as string[],
  };
  const next = parser();
  let reg = next(doc);
  const session = (serial: string, vni: number) => ({ identity: { serial, vni, vlan: 0 } });
  // The last session claims a VNI its unit does not have: only a check would close it.
  const sessions = [session('CK-1', 100), session('CK-2', 200), session('CK-3', 200), { identity: { serial: 'CK-1', vni: 999, vlan: 0 } }];
  const closed = (prev: Registry | undefined) =>
    closedByRegistry(reg, sessions, prev).map((c) => `${c.session.identity.serial}@${c.session.identity.vni}:${c.reason}`);

  let prev = reg;
  doc.devices['CK-3'] = { state: 'revoked', tenant: 'globex', updatedAt: '2026-12-05T00:00:00Z' };
  reg = next(doc);
  assert.deepEqual(closed(prev), ['CK-3@200:registry:revoked'], 'only the changed unit was looked at');
  assert.deepEqual(closed(undefined), ['CK-3@200:registry:revoked', 'CK-1@999:segment-changed'], 'without prev: all');

  prev = reg;
  doc.tenants['acme']!.segments['lan']!['vni'] = 101;
  reg = next(doc);
  assert.deepEqual(closed(prev), ['CK-1@100:segment-changed', 'CK-1@999:segment-changed'], "the changed tenant's units only");

  prev = reg;
  doc.denylist = ['CK-2'];
  reg = next(doc);
  assert.deepEqual(closed(prev), [
    'CK-1@100:segment-changed',
    'CK-2@200:registry:denylisted',
    'CK-3@200:registry:revoked',
    'CK-1@999:segment-changed',
  ]);
});

test('a sandbox still ends at its expiry when only units changed in between', () => {
  let wall = T0;
  const timers: { at: number; fn: () => void }[] = [];
  const config = parseHeadendConfig(
    { tls: { cert: 'x', key: 'x', deviceCa: 'x' }, registry: 'r.json', auditLog: 'a.jsonl', listen: { port: 0 } },
    '/tmp',
  );
  const doc = {
    version: 1,
    tenants: {
      acme: {
        segments: { lan: { vni: 100 }, drill: { vni: 0xf00000, sandbox: { drill: 'a', expiresAt: new Date(T0 + 60_000).toISOString() } } },
      },
    },
    devices: {} as Record<string, Record<string, unknown>>,
  };
  const next = parser();
  const core = new HeadendCore(config, next(doc), {
    log: silentLogger,
    audit: () => {},
    clock: { now: () => wall },
    wallClock: { now: () => wall },
    scheduler: {
      setTimeout: (fn, ms) => (timers.push({ at: wall + ms, fn }), () => {}),
      setInterval: () => () => {},
      setImmediate: (fn) => (fn(), () => {}),
    },
    vtep: { send: () => {} } as never,
  });
  const vnis = (): number[] => [...core.l2.segmentStats()].map((s) => s.info.vni).sort((a, b) => a - b);
  assert.deepEqual(vnis(), [100, 0xf00000]);
  // A unit claimed: the tenants are the same entries, no segment is looked at again.
  doc.devices['CK-1'] = { state: 'claimed', tenant: 'acme', updatedAt: at };
  core.reload(() => next(doc), 'sighup');
  wall = T0 + 60_001;
  for (const t of timers.splice(0)) if (t.at <= wall) t.fn();
  assert.deepEqual(vnis(), [100], 'the sandbox left the switch at its expiry');
});
