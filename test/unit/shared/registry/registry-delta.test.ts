// SPDX-License-Identifier: UNLICENSED
// A registry rebuilt from deltas is the registry parseRegistry returns for the same document, step after
// step (through a structured clone, as the deltas cross from the parser's thread); entries a step did not
// change keep their identity; a step that changed nothing gives back the very same registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyRegistryDelta, diffRegistry, EMPTY_INDEX, type RegistryIndex } from '../../../../src/shared/registry/registry-delta.js';
import { EMPTY_REGISTRY, parseRegistry, type Registry } from '../../../../src/shared/registry/registry.js';

type Doc = {
  version: 1;
  tenants: Record<string, { segments: Record<string, Record<string, unknown>> }>;
  devices: Record<string, Record<string, unknown>>;
  denylist: string[];
};

const at = '2026-12-01T00:00:00Z';

function start(): Doc {
  return {
    version: 1,
    tenants: {
      acme: { segments: { lan: { vni: 100, vteps: ['192.0.2.10'] }, dmz: { vni: 101, vteps: [] } } },
      globex: { segments: { lan: { vni: 200, vteps: ['192.0.2.20', '192.0.2.21'], vtepPathMtu: 1500 } } },
    },
    devices: {
      'CK-1': { state: 'claimed', tenant: 'acme', segment: 'lan', site: 'hq', updatedAt: at },
      'CK-2': { state: 'claimed', tenant: 'acme', vlans: { '20': 'dmz' }, updatedAt: at },
      'CK-3': { state: 'claimed', tenant: 'globex', updatedAt: at },
      'CK-4': { state: 'allowed', updatedAt: at },
    },
    denylist: [],
  };
}

// Each step changes the document the way an operator or a drill would.
const steps: [string, (d: Doc) => void][] = [
  ['a tenant added', (d) => void (d.tenants['initech'] = { segments: { lan: { vni: 300 } } })],
  ['a VTEP added to one segment', (d) => void (d.tenants['acme']!.segments['lan']!['vteps'] = ['192.0.2.10', '192.0.2.11'])],
  ['a unit claimed', (d) => void (d.devices['CK-4'] = { state: 'claimed', tenant: 'initech', updatedAt: '2026-12-02T00:00:00Z' })],
  [
    'a unit revoked and one removed',
    (d) => {
      d.devices['CK-3'] = { state: 'revoked', tenant: 'globex', updatedAt: '2026-12-02T00:00:00Z' };
      delete d.devices['CK-2'];
    },
  ],
  [
    'a drill sandbox and a failover',
    (d) => {
      d.tenants['acme']!.segments['drill'] = { vni: 150, sandbox: { drill: 'd1', expiresAt: '2026-12-03T00:00:00Z' } };
      d.tenants['globex']!.segments['lan']!['failover'] = { gateway: '10.0.0.1', since: at };
    },
  ],
  ['the denylist', (d) => void d.denylist.push('CK-9')],
  [
    'a tenant removed with its units',
    (d) => {
      delete d.tenants['globex'];
      delete d.devices['CK-3'];
    },
  ],
  [
    'a VNI moved from one tenant to another',
    (d) => {
      delete d.tenants['initech']!.segments['lan'];
      d.tenants['initech']!.segments['wan'] = { vni: 301 };
      d.tenants['acme']!.segments['old'] = { vni: 300 };
      d.devices['CK-4']!['segment'] = 'wan';
    },
  ],
];

function over(prev: Registry, index: RegistryIndex, doc: Doc): { reg: Registry; index: RegistryIndex; changed: number } {
  const { delta, index: next } = diffRegistry(index, parseRegistry(structuredClone(doc)));
  const crossed = structuredClone(delta);
  return { reg: applyRegistryDelta(prev, crossed), index: next, changed: delta.tenants.length + delta.devices.length };
}

test('registry delta: every step rebuilt from deltas equals a full parse, and unchanged entries keep their identity', () => {
  const doc = start();
  let { reg, index } = over(EMPTY_REGISTRY, EMPTY_INDEX, doc);
  assert.deepStrictEqual(reg, parseRegistry(doc));
  for (const [what, change] of steps) {
    const prev = reg;
    change(doc);
    ({ reg, index } = over(prev, index, doc));
    assert.deepStrictEqual(reg, parseRegistry(structuredClone(doc)), what);
    for (const [name, t] of Object.entries(reg.tenants)) {
      if (JSON.stringify(t) === JSON.stringify(prev.tenants[name])) assert.equal(t, prev.tenants[name], `${what}: tenant ${name} kept`);
    }
    for (const [serial, d] of Object.entries(reg.devices)) {
      if (JSON.stringify(d) === JSON.stringify(prev.devices[serial])) assert.equal(d, prev.devices[serial], `${what}: unit ${serial} kept`);
    }
  }
});

test('registry delta: a step that changed nothing is the same registry; a changed one names only what changed', () => {
  const doc = start();
  const first = over(EMPTY_REGISTRY, EMPTY_INDEX, doc);
  const again = over(first.reg, first.index, doc);
  assert.equal(again.reg, first.reg);
  assert.equal(again.changed, 0);
  doc.tenants['acme']!.segments['lan']!['multiSite'] = true;
  const one = over(first.reg, first.index, doc);
  assert.equal(one.changed, 1);
  assert.notEqual(one.reg.tenants['acme'], first.reg.tenants['acme']);
  assert.equal(one.reg.tenants['globex'], first.reg.tenants['globex']);
  assert.equal(one.reg.devices, first.reg.devices, 'no unit changed: the same device map');
});

test('registry delta: what crossed as a plain clone comes out frozen, like a parse', () => {
  const doc = start();
  doc.tenants['acme']!.segments['drill'] = { vni: 150, sandbox: { drill: 'd1', expiresAt: at } };
  const { reg } = over(EMPTY_REGISTRY, EMPTY_INDEX, doc);
  const lan = reg.tenants['acme']!.segments['lan']!;
  for (const o of [
    reg,
    reg.tenants,
    reg.tenants['acme'],
    reg.tenants['acme']!.segments,
    lan,
    lan.vteps,
    reg.tenants['acme']!.segments['drill']!.sandbox,
    reg.devices,
    reg.devices['CK-2'],
    reg.devices['CK-2']!.vlans,
    reg.denylist,
  ]) {
    assert.ok(Object.isFrozen(o), JSON.stringify(o));
  }
});
