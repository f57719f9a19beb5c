// SPDX-License-Identifier: UNLICENSED
// The registry names a trunk unit's segment per VLAN (issue 15, item 3): devices.<serial>.vlans maps
// VLAN IDs to segments of the device's tenant; untagged stays the device's segment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitDeviceVlan, parseRegistry } from '../../../../src/shared/registry/registry.js';
import { helloVlan } from '../../../../src/headend/core/admission.js';

const doc = (vlans: unknown): unknown => ({
  version: 1,
  tenants: { acme: { segments: { lan: { vni: 100 }, voice: { vni: 110 } } }, other: { segments: { x: { vni: 200 } } } },
  devices: { 'A-1': { state: 'claimed', tenant: 'acme', segment: 'lan', vlans } },
});

test('vlans map VLAN IDs to the tenant segments; untagged is the device segment; unmapped is refused', () => {
  const reg = parseRegistry(doc({ '10': 'voice' }));
  const u = admitDeviceVlan(reg, 'A-1', 0);
  const v = admitDeviceVlan(reg, 'A-1', 10);
  assert.ok(u.ok && u.segment.vni === 100);
  assert.ok(v.ok && v.segment.vni === 110 && v.segmentName === 'voice');
  assert.deepEqual(admitDeviceVlan(reg, 'A-1', 20), { ok: false, serial: 'A-1', reason: 'vlan-unmapped' });
  assert.deepEqual(admitDeviceVlan(reg, 'B-9', 10), { ok: false, serial: 'B-9', reason: 'unknown-serial' });
  // No `vlans` at all: the field defaults to absent and every tagged VLAN is refused.
  assert.equal(parseRegistry(doc(undefined)).devices['A-1']?.vlans, undefined);
});

test('bad VLAN IDs and segments outside the tenant are refused with the JSON path', () => {
  for (const [vlans, path] of [
    [{ '0': 'voice' }, /devices\.A-1\.vlans/],
    [{ '4095': 'voice' }, /devices\.A-1\.vlans/],
    [{ '010': 'voice' }, /devices\.A-1\.vlans/],
    [{ '10': 'x' }, /devices\.A-1\.vlans\.10.*no segment "x"/],
  ] as const) {
    assert.throws(
      () => parseRegistry(doc(vlans)),
      (e: unknown) => (e as { code?: string }).code === 'CK_ERR_REGISTRY' && path.test((e as Error).message),
    );
  }
});

test('hello capabilities: vlan:N names the VLAN; none is untagged; malformed or repeated is refused', () => {
  assert.equal(helloVlan(['l2', 'arp-nd-proxy']), 0);
  assert.equal(helloVlan(['l2', 'vlan:10']), 10);
  assert.equal(helloVlan(['vlan:4094']), 4094);
  for (const bad of [['vlan:0'], ['vlan:4095'], ['vlan:x'], ['vlan:010'], ['vlan:10', 'vlan:20']]) assert.equal(helloVlan(bad), 'bad');
});
