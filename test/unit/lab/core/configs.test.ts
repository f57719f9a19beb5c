// SPDX-License-Identifier: UNLICENSED
// What the lab's programs read, built from the plan: the registry, the agent's UCI, the EST config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentUci, estConfig, estUrl, labRegistry } from '../../../../src/lab/core/configs.js';
import { parseAgentConfig } from '../../../../src/agent/core/config.js';
import { parseEstServerConfig } from '../../../../src/enroll/core/config.js';
import { admitDevice, claimDevice, importAllowlist } from '../../../../src/shared/registry/registry.js';
import { planLab, TENANT_SERIAL, TENANT_VNI } from '../../../../src/lab/core/topology.js';

test("the lab registry admits each tenant's connector, once allowlisted and claimed, onto its VNI and the hv VTEP", () => {
  const now = new Date(0);
  const base = labRegistry(now);
  for (const t of ['a', 'b'] as const)
    assert.equal(admitDevice(base, TENANT_SERIAL[t]).ok, false, 'units start unknown: they arrive by allowlist');
  let reg = importAllowlist(base, [{ serial: TENANT_SERIAL.a }, { serial: TENANT_SERIAL.b }], now);
  reg = claimDevice(claimDevice(reg, TENANT_SERIAL.a, 'a', now, 'default'), TENANT_SERIAL.b, 'b', now, 'default');
  for (const t of ['a', 'b'] as const) {
    const adm = admitDevice(reg, TENANT_SERIAL[t]);
    assert.ok(adm.ok);
    assert.equal(adm.segment.vni, TENANT_VNI[t]);
    assert.deepEqual(adm.segment.vteps, [planLab().hv.fabricAddr]);
  }
  assert.deepEqual(admitDevice(reg, 'LAB-DENIED-01'), { ok: false, serial: 'LAB-DENIED-01', reason: 'denylisted' });
});

test("agent UCI points at the headend, the identity directory and the unit's factory block", () => {
  const text = agentUci(planLab(), 'lab-site-a', {
    identityDir: "/tmp/it's",
    statusSocket: '/tmp/a.sock',
    factoryBlockPath: '/tmp/unit.img',
  });
  assert.match(text, /list headend 'tls:\/\/203\.0\.113\.10:443'/);
  assert.match(text, /option identity_dir '\/tmp\/it'\\''s'/);
  assert.match(text, /option bridge 'br-lan'/);
  const cfg = parseAgentConfig(text);
  assert.equal(cfg.enroll.factoryBlockPath, '/tmp/unit.img');
  assert.equal(cfg.enroll.factoryBlockOffset, 25_165_824);
});

test('the EST server listens next to the headend, on the address the units dial, with a short retry', () => {
  const files = { cert: 'c', key: 'k', factoryCas: ['f'], deviceCaCert: 'd', deviceCaKey: 'dk', registry: 'r', issuanceLog: 'l' };
  const cfg = parseEstServerConfig(estConfig(planLab(), files, { certLifetimeS: 60, retryAfterS: 2 }), '/lab/dc');
  assert.equal(cfg.host, '203.0.113.10');
  assert.equal(cfg.port, 8443);
  assert.equal(cfg.certLifetimeS, 60);
  assert.equal(cfg.retryAfterS, 2);
  assert.equal(estUrl(planLab()), 'https://203.0.113.10:8443/.well-known/est');
});
