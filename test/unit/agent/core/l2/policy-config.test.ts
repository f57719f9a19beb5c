// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY_CONFIG, parsePolicyConfig, policyConfig } from '../../../../../src/agent/core/l2/policy-config.js';
import { hasCode, ConfigError } from '../../../../../src/shared/errors.js';

test('defaults: the documented values', () => {
  const c = parsePolicyConfig({});
  assert.deepEqual(c, DEFAULT_POLICY_CONFIG);
  assert.equal(c.macAgeMs, 300_000);
  assert.equal(c.macMoveThreshold, 5);
  assert.equal(c.macMoveWindowMs, 180_000);
  assert.equal(c.vlanMode, 'drop');
  assert.equal(c.allowDhcpFromTunnel, false);
  assert.equal(c.splitBrainBlock, true);
  assert.ok(Object.isFrozen(c));
});

test('raw strings with units become a typed config', () => {
  const c = parsePolicyConfig({
    mac_age_s: '600',
    mac_freeze_s: '3600',
    proxy_fresh_s: '30',
    split_brain_block: '0',
    allow_dhcp_from_tunnel: 'yes',
    vlan_mode: 'transparent',
    own_mac: '02:00:00:00:00:99 02-00-00-00-00-98',
    own_ip: '192.0.2.2 fd00::2',
    bum_lan_broadcast_pps: '50',
    bum_tunnel_multicast_bps: '1000000',
    bpdu_block_s: '0',
  });
  assert.equal(c.macAgeMs, 600_000);
  assert.equal(c.macFreezeMs, 3_600_000);
  assert.equal(c.proxyFreshMs, 30_000);
  assert.equal(c.splitBrainBlock, false);
  assert.equal(c.allowDhcpFromTunnel, true);
  assert.equal(c.vlanMode, 'transparent');
  assert.deepEqual(c.ownMacs, [0x02_00_00_00_00_99, 0x02_00_00_00_00_98]);
  assert.deepEqual(c.ownIpv4, [0xc0_00_02_02]);
  assert.equal(c.ownIpv6[0]?.toString('hex'), 'fd000000000000000000000000000002');
  assert.equal(c.bumFromLan.broadcast.pps, 50);
  assert.equal(c.bumFromLan.broadcast.bps, DEFAULT_POLICY_CONFIG.bumFromLan.broadcast.bps);
  assert.equal(c.bumFromTunnel.multicast.bps, 1_000_000);
  assert.equal(c.bpduBlockMs, 0);
});

test('bad input names the key', () => {
  const bad: [Record<string, string>, string][] = [
    [{ mac_age_s: 'soon' }, 'mac_age_s'],
    [{ mac_age_s: '1' }, 'mac_age_s'],
    [{ proxy_arp: 'maybe' }, 'proxy_arp'],
    [{ vlan_mode: 'strip' }, 'vlan_mode'],
    [{ own_mac: '02:00:00:00:00' }, 'own_mac'],
    [{ own_ip: '192.0.2.300' }, 'own_ip'],
    [{ mac_age: '300' }, 'mac_age'],
  ];
  for (const [raw, key] of bad) {
    assert.throws(
      () => parsePolicyConfig(raw),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && e instanceof ConfigError && e.key === key,
      JSON.stringify(raw),
    );
  }
  assert.throws(
    () => policyConfig({ macAgeMs: 0 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'macAgeMs',
  );
  assert.throws(
    () => policyConfig({ missLimit: { pps: -1, bps: 0 } }),
    (e: unknown) => e instanceof ConfigError && e.key === 'missLimit',
  );
});
