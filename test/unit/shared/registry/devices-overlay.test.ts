// SPDX-License-Identifier: UNLICENSED
// The shared device map: a derived map reads like a plain frozen object (lookups, `in`, keys in order,
// entries, JSON), never changes the map it came from, refuses writes, says which step made it, and folds
// into a flat map once the changes grow, with the same contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceCount, devicesWith, stepBetween, type Devices } from '../../../../src/shared/registry/devices-overlay.js';
import { claimDevice, parseRegistry, revokeDevice, type Device } from '../../../../src/shared/registry/registry.js';

const dev = (state: Device['state'], updatedAt = 't0'): Device => Object.freeze({ state, updatedAt });

function flat(n: number): Devices {
  const o: Record<string, Device> = {};
  for (let i = 0; i < n; i++) o[`S-${i}`] = dev('allowed');
  return Object.freeze(o);
}

test('a derived map reads like the plain object it stands for, and the original is untouched', () => {
  const base = flat(3);
  const next = devicesWith(
    base,
    new Map<string, Device | null>([
      ['S-1', null],
      ['S-2', dev('claimed')],
      ['S-9', dev('allowed', 't1')],
    ]),
  );
  const want = { 'S-0': dev('allowed'), 'S-2': dev('claimed'), 'S-9': dev('allowed', 't1') };
  assert.deepEqual(JSON.parse(JSON.stringify(next)), want);
  assert.deepEqual(Object.keys(next), ['S-0', 'S-2', 'S-9']);
  assert.deepEqual({ ...next }, want);
  assert.equal(next['S-1'], undefined);
  assert.equal('S-1' in next, false);
  assert.equal('S-9' in next, true);
  assert.equal(next['S-2']?.state, 'claimed');
  assert.deepEqual(Object.keys(base), ['S-0', 'S-1', 'S-2'], 'the original is unchanged');
  assert.equal(base['S-2']?.state, 'allowed');
  assert.throws(() => {
    (next as Record<string, Device>)['S-0'] = dev('revoked');
  }, TypeError);
  assert.equal(next['S-0']?.state, 'allowed');
  assert.deepEqual(
    [...(stepBetween(base, next) ?? [])].map(([k]) => k),
    ['S-1', 'S-2', 'S-9'],
  );
  assert.equal(stepBetween(flat(3), next), null, 'only from the map it was derived from');
});

test('layers stack without depth and fold into a flat map with the same contents', () => {
  let m = flat(100);
  const plain: Record<string, Device> = { ...m };
  for (let i = 0; i < 3_000; i++) {
    const serial = `S-${i % 150}`;
    const d = i % 7 === 0 ? null : dev('claimed', `t${i}`);
    m = devicesWith(m, new Map([[serial, d]]));
    if (d === null) delete plain[serial];
    else plain[serial] = d;
  }
  assert.deepEqual(Object.fromEntries(Object.entries(m)), plain);
  assert.equal(deviceCount(m), Object.keys(plain).length, 'the kept count matches');
  assert.deepEqual(Object.keys(m).sort(), Object.keys(plain).sort());
});

test('claim and revoke validate only the unit and share the map (a bad claim is still refused)', () => {
  const devices: Record<string, unknown> = {};
  for (let i = 0; i < 1_000; i++) devices[`S-${i}`] = { state: 'allowed', updatedAt: '' };
  const reg = parseRegistry({ version: 1, tenants: { acme: { segments: { lan: { vni: 100 } } } }, devices });
  const claimed = claimDevice(reg, 'S-5', 'acme', new Date(0), 'lan');
  assert.equal(claimed.devices['S-5']?.state, 'claimed');
  assert.equal(reg.devices['S-5']?.state, 'allowed');
  assert.deepEqual([...(stepBetween(reg.devices, claimed.devices)?.keys() ?? [])], ['S-5']);
  assert.throws(() => claimDevice(reg, 'S-5', 'acme', new Date(0), 'wan'), /no segment "wan"/);
  const revoked = revokeDevice(claimed, 'S-5', new Date(0));
  assert.equal(revoked.devices['S-5']?.state, 'revoked');
  assert.deepEqual(revoked.denylist, ['S-5']);
  assert.ok(Object.isFrozen(revoked));
  assert.deepEqual(parseRegistry(JSON.parse(JSON.stringify(revoked))), JSON.parse(JSON.stringify(revoked)));
});
