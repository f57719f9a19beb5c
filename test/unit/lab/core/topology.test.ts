// SPDX-License-Identifier: UNLICENSED
// The lab plan as data: tenant B really is a copy of tenant A, names fit the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab, SITE, type LabPlan, type LinkEnd } from '../../../../src/lab/core/topology.js';

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
