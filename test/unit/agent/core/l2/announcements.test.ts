// SPDX-License-Identifier: UNLICENSED
// Re-announcing the site on attach (a failover onto another headend): every LAN host the table holds is
// announced toward the tunnel at once, DC-side holders are not, and a LAN bigger than the pending bound is
// counted, not dropped silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { announceLanOnAttach } from '../../../../../src/agent/core/l2/announcements.js';
import { newArpView, parseArp } from '../../../../../src/agent/core/l2/arp.js';
import { newPolicyCounters } from '../../../../../src/agent/core/l2/counters.js';
import { parseIpv4 } from '../../../../../src/agent/core/l2/ipv4.js';
import { NeighbourTable, ipv6Key } from '../../../../../src/agent/core/l2/neighbour-table.js';
import { newNdView, parseIpv6, parseNd } from '../../../../../src/agent/core/l2/nd.js';
import { Reoriginator } from '../../../../../src/agent/core/l2/reoriginate.js';
import { newEthernetView, parseEthernet } from '../../../../../src/shared/l2/ethernet.js';

const HOST = 0x02_00_00_00_00_01;
const HOST6 = 0x02_00_00_00_00_03;
const VM = 0x02_00_00_00_00_02;

test('on attach each LAN host is announced toward the tunnel (GARP, unsolicited NA), DC holders are not', () => {
  const neighbours = new NeighbourTable();
  const reoriginator = new Reoriginator({ copies: 3, intervalMs: 1000 });
  const counters = newPolicyCounters();
  neighbours.observe(parseIpv4('192.0.2.10'), HOST, 'lan', 'arp', 0);
  neighbours.observe(ipv6Key(parseIpv6('fd00::10')), HOST6, 'lan', 'nd', 0, true);
  neighbours.observe(parseIpv4('192.0.2.20'), VM, 'tunnel', 'arp', 0);

  assert.equal(announceLanOnAttach({ neighbours, reoriginator, counters }, 100), 2);
  const due = reoriginator.due(100);
  assert.equal(due.length, 2, 'the first copies are due at once');
  const eth = newEthernetView();
  const seen = new Map<number, string>();
  for (const f of due) {
    assert.equal(f.toward, 'tunnel');
    assert.equal(parseEthernet(f.frame, eth), null);
    const arp = newArpView();
    if (parseArp(f.frame, eth.l3Offset, arp) === null) {
      assert.equal(arp.kind, 'gratuitous');
      seen.set(eth.src, `garp ${arp.senderIp === parseIpv4('192.0.2.10')}`);
      continue;
    }
    const nd = newNdView();
    assert.equal(parseNd(f.frame, eth.l3Offset, nd), null);
    assert.equal(nd.kind, 'na-unsolicited');
    seen.set(eth.src, `na router=${nd.router}`);
  }
  assert.deepEqual([...seen].sort(), [
    [HOST, 'garp true'],
    [HOST6, 'na router=true'],
  ]);
  assert.equal(counters.events['reoriginate-scheduled'], 2);
});

test('a LAN beyond the pending bound: the rest are counted as refused', () => {
  const neighbours = new NeighbourTable();
  const reoriginator = new Reoriginator({ maxPending: 2 });
  const counters = newPolicyCounters();
  for (let i = 1; i <= 5; i++) neighbours.observe(parseIpv4(`192.0.2.${i}`), HOST + i, 'lan', 'arp', 0);
  assert.equal(announceLanOnAttach({ neighbours, reoriginator, counters }, 0), 2);
  assert.equal(counters.events['reoriginate-refused'], 3);
});
