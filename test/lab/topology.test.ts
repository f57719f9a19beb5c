// SPDX-License-Identifier: UNLICENSED
// The lab plan as data (no root needed): tenant B really is a copy of tenant A, names fit the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentUci, estConfig, estUrl, labRegistry } from '../../src/lab/core/configs.js';
import { parseAgentConfig } from '../../src/agent/core/config.js';
import { parseEstServerConfig } from '../../src/enroll/core/config.js';
import { admitDevice, claimDevice, importAllowlist } from '../../src/shared/registry/registry.js';
import { planLab, SITE, TENANT_SERIAL, TENANT_VNI, type LabPlan, type LinkEnd } from '../../src/lab/core/topology.js';

function endsOf(plan: LabPlan, node: string): LinkEnd[] {
  return plan.links.flatMap((l) => [l.a, l.b]).filter((e) => e.node === node);
}

test('tenant B has the same addresses and MACs as tenant A, on another VNI', () => {
  const plan = planLab();
  const [a, b] = plan.tenants;
  assert.ok(a && b);
  assert.notEqual(a.vni, b.vni);
  for (const role of ['lanHost', 'router', 'vm'] as const) {
    // Everything but the node name and the per-tenant ISP uplink must be identical.
    const site = (node: string): LinkEnd[] =>
      endsOf(plan, node)
        .filter((e) => (e.addrs || e.mac) && !e.addrs?.some((x) => x.startsWith('100.64.')))
        .map((e) => ({ ...e, node: '' }));
    const ea = site(a.nodes[role]);
    const eb = site(b.nodes[role]);
    assert.ok(ea.length > 0);
    assert.deepEqual(ea, eb, role);
  }
  const brA = plan.bridges.find((x) => x.node === a.nodes.connector);
  const brB = plan.bridges.find((x) => x.node === b.nodes.connector);
  assert.deepEqual({ ...brA, node: '' }, { ...brB, node: '' });
  assert.equal(brA?.mac, SITE.connector.mac);
});

test('interface names are unique per node and fit IFNAMSIZ', () => {
  for (const plan of [planLab('one-port'), planLab('two-port')]) {
    for (const n of plan.nodes) {
      const names = [
        ...endsOf(plan, n.name).map((e) => e.ifname),
        ...plan.bridges.filter((x) => x.node === n.name).map((x) => x.name),
        ...plan.vxlans.filter((x) => x.node === n.name).map((x) => x.name),
      ];
      assert.equal(new Set(names).size, names.length, `${n.name}: ${names.join(' ')}`);
      assert.ok(names.every((x) => x.length <= 15));
    }
  }
});

test('one-port routes the connector through the customer router; two-port through its own WAN', () => {
  assert.equal(planLab('one-port').routes.find((r) => r.node === 'connector')?.via, SITE.router.ip);
  assert.equal(planLab('two-port').routes.find((r) => r.node === 'connector')?.via, '100.64.2.1');
  assert.ok(endsOf(planLab('two-port'), 'connector').some((e) => e.ifname === 'eth0'));
  assert.ok(!endsOf(planLab('one-port'), 'connector').some((e) => e.ifname === 'eth0'));
});

test('the lab registry admits each tenant\'s connector, once allowlisted and claimed, onto its VNI and the hv VTEP', () => {
  const now = new Date(0);
  const base = labRegistry(now);
  for (const t of ['a', 'b'] as const) assert.equal(admitDevice(base, TENANT_SERIAL[t]).ok, false, 'units start unknown: they arrive by allowlist');
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

test('agent UCI points at the headend, the identity directory and the unit\'s factory block', () => {
  const text = agentUci(planLab(), 'lab-site-a', { identityDir: "/tmp/it's", statusSocket: '/tmp/a.sock', factoryBlockPath: '/tmp/unit.img' });
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
