// SPDX-License-Identifier: UNLICENSED
// Full-site failover decisions, pure (issue 15, item 2): the gateway spec, "is the site gone" from the
// headend's audit records, and the fence that keeps the site's units off the segment while the DC holds
// the site's gateway address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitDevice, admitDeviceVlan, parseRegistry } from '../../../../src/shared/registry/registry.js';
import { fenceSite, parseGatewaySpec, siteDown, unfenceSite, type SessionRecord } from '../../../../src/dr/core/failover.js';

const T0 = Date.parse('2026-12-04T12:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

test('gateway spec: IP, prefix (default 24) and an optional unicast MAC', () => {
  assert.deepEqual(parseGatewaySpec('192.168.1.1'), { ip: '192.168.1.1', prefix: 24 });
  assert.deepEqual(parseGatewaySpec('10.0.0.254/16,02:AA:00:00:00:01'), { ip: '10.0.0.254', prefix: 16, mac: '02:aa:00:00:00:01' });
  for (const bad of ['192.168.1', '192.168.1.1/33', '192.168.1.1,zz', '192.168.1.1,01:00:5e:00:00:01', '300.1.1.1']) {
    assert.throws(
      () => parseGatewaySpec(bad),
      (e: unknown) => (e as { code?: string }).code === 'CK_ERR_DRILL',
      bad,
    );
  }
});

test('site down: every unit of the segment disconnected, the last one at least the threshold ago', () => {
  const recs: SessionRecord[] = [
    { time: at(0), event: 'connect', serial: 'A', tenant: 'acme', segment: 'lan' },
    { time: at(1), event: 'connect', serial: 'B', tenant: 'acme', segment: 'lan' },
    { time: at(2), event: 'connect', serial: 'X', tenant: 'other', segment: 'lan' },
    { time: at(10), event: 'disconnect', serial: 'A', tenant: 'acme', segment: 'lan' },
  ];
  assert.match((siteDown(recs, 'acme', 'lan', T0 + 100_000, 30) as { reason: string }).reason, /unit B is connected/);
  const both = [...recs, { time: at(20), event: 'disconnect', serial: 'B', tenant: 'acme', segment: 'lan' }];
  assert.match((siteDown(both, 'acme', 'lan', T0 + 40_000, 30) as { reason: string }).reason, /down for 20 s only/);
  assert.deepEqual(siteDown(both, 'acme', 'lan', T0 + 50_000, 30), { down: true, sinceMs: T0 + 20_000, downForS: 30 });
  // A unit that came back is up again.
  const back = [...both, { time: at(60), event: 'connect', serial: 'A', tenant: 'acme', segment: 'lan' }];
  assert.equal(siteDown(back, 'acme', 'lan', T0 + 500_000, 30).down, false);
  assert.match((siteDown(recs, 'acme', 'voice', T0, 0) as { reason: string }).reason, /no session/);
});

test('fence: while failed over the site units (untagged and VLANs) are refused; unfence lets them in', () => {
  const reg = parseRegistry({
    version: 1,
    tenants: { acme: { segments: { lan: { vni: 100 }, voice: { vni: 110 } } } },
    devices: { 'CN-1': { state: 'claimed', tenant: 'acme', segment: 'lan', vlans: { '20': 'voice' } } },
  });
  const fenced = fenceSite(reg, 'acme', 'lan', { ip: '192.168.1.1', prefix: 24, mac: '02:00:00:00:01:01' }, T0);
  assert.deepEqual(fenced.tenants['acme']?.segments['lan']?.failover, { gateway: '192.168.1.1/24,02:00:00:00:01:01', since: at(0) });
  assert.deepEqual(admitDevice(fenced, 'CN-1'), { ok: false, serial: 'CN-1', reason: 'failover-active' });
  assert.equal(admitDeviceVlan(fenced, 'CN-1', 20).ok, false, 'the whole site is fenced while its default segment is failed over');
  assert.throws(() => fenceSite(fenced, 'acme', 'lan', { ip: '192.168.1.1', prefix: 24 }, T0), /already failed over/);
  const back = unfenceSite(fenced, 'acme', 'lan');
  assert.ok(admitDevice(back, 'CN-1').ok);
  assert.throws(() => unfenceSite(back, 'acme', 'lan'), /not failed over/);
  // Only the VLAN's segment failed over: the untagged session is still admitted, that VLAN's is not.
  const voice = fenceSite(reg, 'acme', 'voice', { ip: '10.0.20.1', prefix: 24 }, T0);
  assert.ok(admitDevice(voice, 'CN-1').ok);
  assert.deepEqual(admitDeviceVlan(voice, 'CN-1', 20), { ok: false, serial: 'CN-1', reason: 'failover-active' });
});
