// SPDX-License-Identifier: UNLICENSED
// The EVPN fabric option (issue 13, item 4): FRR (zebra + bgpd) on both headend hosts and on the
// hypervisor, iBGP l2vpn evpn. The hypervisor's VTEP neither learns nor floods by itself: its flood list
// comes from type-3 routes and the site's MACs from type-2 routes, which zebra on the headend host
// originates from the MACs the headend publishes on its bridge port (headend `evpn.port`). After a kill -9
// of the active headend the agent re-attaches to the other, re-announces its LAN hosts, the new headend
// publishes them, and the fabric learns the new location by route (MAC mobility sequence + 1); vtysh on
// the hypervisor shows the route with the survivor as next hop, and traffic flows both ways again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nsExec } from '../../../src/lab/adapters/netns.js';
import { writeJson } from '../../integration/headend/adapters/fixtures.js';
import { isRoot } from '../../helpers/netns.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import type { TempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { frrMissing } from './frr.js';
import { HEADEND_IPS, LAN_HOST, VM, gapAfter, haLab, pinger, type HaLab, type HeadendName } from './ha-lab.js';

const RUNS = 3;
const BOUND_MS = 3_000;

function fileRegistry(doc: unknown, d: TempDir): Promise<unknown> {
  const file = d.path('registry.json');
  writeJson(file, doc);
  return Promise.resolve({ file });
}

/** The hypervisor's view of the LAN host's MAC: the type-2 route's next hop and the kernel FDB entry. */
async function lanHostAt(lab: HaLab): Promise<{ route: string | null; fdb: string | null }> {
  const hv = lab.frr[lab.hvNs];
  assert.ok(hv);
  const mac = await hv.vtysh(`show evpn mac vni 100 mac ${LAN_HOST.mac}`);
  const route = /Remote VTEP: (\S+)/.exec(mac)?.[1] ?? null;
  const fdb = (await nsExec(lab.hvNs, 'bridge', ['fdb', 'show', 'dev', 'vx100'], { allowFailure: true })).stdout;
  const line = fdb.split('\n').find((l) => l.startsWith(`${LAN_HOST.mac} dst `) && l.includes('extern_learn'));
  return { route, fdb: line ? (line.split(' ')[2] ?? null) : null };
}

test(
  'EVPN with FRR: the site MACs are type-2 routes from the active headend; after kill -9 the route moves and traffic flows',
  { skip: skipUnlessCi((!isRoot() && 'needs root for network namespaces') || frrMissing()) },
  async (t) => {
    const lab = await haLab(t, { registry: fileRegistry, fabric: 'evpn' });
    const hv = lab.frr[lab.hvNs];
    assert.ok(hv);
    let summary = '';
    await waitFor('the hypervisor peering with both headend hosts', 30_000, async () => {
      summary = await hv.vtysh('show bgp l2vpn evpn summary json');
      return (summary.match(/"state":"Established"/g) ?? []).length >= 2;
    }).catch((e: unknown) => assert.fail(`${String(e)}: ${summary.slice(0, 2000)}`));
    // Flood list from type-3 routes: both headends, no static entries.
    await waitFor('type-3 routes of both headends in the flood list', 15_000, async () => {
      const fdb = (await nsExec(lab.hvNs, 'bridge', ['fdb', 'show', 'dev', 'vx100'])).stdout;
      return fdb.includes(`00:00:00:00:00:00 dst ${HEADEND_IPS.a} `) && fdb.includes(`00:00:00:00:00:00 dst ${HEADEND_IPS.b} `);
    });

    for (let i = 1; i <= RUNS; i++) {
      const victim = lab.active();
      assert.ok(victim);
      const survivor: HeadendName = victim === 'a' ? 'b' : 'a';
      const toLan = pinger(lab.vmNs, LAN_HOST.ip, lab.children);
      const toVm = pinger(lab.lanNs, VM.ip, lab.children);
      try {
        await waitFor('steady pings both ways', 20_000, () => toVm.replies.length >= 10 && toLan.replies.length >= 10);
        const before = await lanHostAt(lab);
        assert.deepEqual(
          before,
          { route: HEADEND_IPS[victim], fdb: HEADEND_IPS[victim] },
          'the LAN host is a route via the active headend',
        );
        const routes = await hv.vtysh('show bgp l2vpn evpn route type macip');
        t.diagnostic(
          `run ${i}: hypervisor type-2 routes before:\n${routes
            .split('\n')
            .filter((l) => /\[2\]|\d+\.\d+\.\d+\.\d+\(/.test(l))
            .join('\n')}`,
        );
        const atS = Date.now() / 1000;
        const t0 = performance.now();
        await lab.kill(victim);
        const moved = await waitFor('the route to move to the survivor', 10_000, async () => {
          const at = await lanHostAt(lab);
          return at.route === HEADEND_IPS[survivor] && at.fdb === HEADEND_IPS[survivor] ? performance.now() - t0 : undefined;
        });
        await waitFor('traffic back both ways', 20_000, () =>
          [toVm, toLan].every((p) => p.replies.filter((r) => r > atS).length >= 10),
        ).catch(() => undefined);
        await Promise.all([toVm.stop(), toLan.stop()]);
        const lanToVm = gapAfter(toVm.replies, atS);
        const vmToLan = gapAfter(toLan.replies, atS);
        t.diagnostic(
          `EVPN run ${i}: kill -9 headend ${victim}: route moved after ${moved.toFixed(0)} ms; LAN->VM gap ${lanToVm} ms, VM->LAN gap ${vmToLan} ms`,
        );
        assert.ok(lanToVm <= BOUND_MS && vmToLan <= BOUND_MS, `traffic back within ${BOUND_MS} ms: ${lanToVm}, ${vmToLan}`);
      } finally {
        await Promise.all([toVm.stop(), toLan.stop()]);
      }
      await lab.start(victim);
    }

    // The site goes away: its session closes and the headend withdraws the route within about a second.
    await lab.stopAgent();
    const t0 = performance.now();
    await waitFor('the route to be withdrawn', 10_000, async () => (await lanHostAt(lab)).route === null);
    t.diagnostic(`site gone: route withdrawn after ${(performance.now() - t0).toFixed(0)} ms`);
  },
);
