// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reoriginator } from '../../../../../src/agent/core/l2/reoriginate.js';
import { newArpView, parseArp } from '../../../../../src/agent/core/l2/arp.js';
import { newEthernetView, parseEthernet } from '../../../../../src/shared/l2/ethernet.js';
import { parseIpv4 } from '../../../../../src/agent/core/l2/ipv4.js';
import { ipv6ToString, newNdView, parseIpv6, parseNd } from '../../../../../src/agent/core/l2/nd.js';
import { ipv6Key } from '../../../../../src/agent/core/l2/neighbour-table.js';
import { BROADCAST_MAC_KEY } from '../../../../../src/shared/l2/mac.js';

const VM = 0x02_00_00_00_00_02;

test('a move yields 3 gratuitous ARPs about a second apart, then nothing', () => {
  const r = new Reoriginator({ copies: 3, intervalMs: 1000 });
  const ip = parseIpv4('192.0.2.10');
  assert.equal(r.schedule({ key: ip, mac: VM, toward: 'lan' }, 5000), true);
  const times: number[] = [];
  for (let t = 5000; t < 10_000; t += 100) {
    for (const f of r.due(t)) {
      times.push(t);
      assert.equal(f.toward, 'lan');
      const eth = newEthernetView();
      assert.equal(parseEthernet(f.frame, eth), null);
      assert.equal(eth.dst, BROADCAST_MAC_KEY);
      assert.equal(eth.src, VM);
      const arp = newArpView();
      assert.equal(parseArp(f.frame, eth.l3Offset, arp), null);
      assert.equal(arp.kind, 'gratuitous');
      assert.equal(arp.senderIp, ip);
      assert.equal(arp.senderMac, VM);
    }
  }
  assert.deepEqual(times, [5000, 6000, 7000]);
  assert.equal(r.pendingCount, 0);
  assert.equal(r.nextDueMs(), Infinity);
});

test('IPv6: unsolicited NA with Override to all nodes, carrying the TLLA', () => {
  const r = new Reoriginator({ copies: 2 });
  const ip = parseIpv6('fd00::10');
  r.schedule({ key: ipv6Key(ip), mac: VM, toward: 'tunnel', router: true }, 0);
  const [f] = r.due(0);
  assert.ok(f);
  assert.equal(f.toward, 'tunnel');
  const eth = newEthernetView();
  assert.equal(parseEthernet(f.frame, eth), null);
  const nd = newNdView();
  assert.equal(parseNd(f.frame, eth.l3Offset, nd), null);
  assert.equal(nd.kind, 'na-unsolicited');
  assert.equal(nd.override, true);
  assert.equal(nd.router, true);
  assert.equal(nd.linkAddr, VM);
  assert.equal(ipv6ToString(nd.targetIp), 'fd00::10');
  assert.equal(ipv6ToString(nd.dstIp), 'ff02::1');
});

test('a newer move of the same IP replaces the pending one; the pending set is bounded', () => {
  const r = new Reoriginator({ copies: 3, maxPending: 2 });
  r.schedule({ key: 1, mac: VM, toward: 'lan' }, 0);
  r.schedule({ key: 1, mac: VM + 1, toward: 'tunnel' }, 0);
  assert.equal(r.pendingCount, 1);
  assert.equal(r.due(0)[0]?.toward, 'tunnel');
  assert.equal(r.schedule({ key: 2, mac: VM, toward: 'lan' }, 0), true);
  assert.equal(r.schedule({ key: 3, mac: VM, toward: 'lan' }, 0), false);
  assert.equal(r.refused, 1);
  r.cancel(2);
  assert.equal(r.pendingCount, 1);
});

test('a late timer does not bunch copies together', () => {
  const r = new Reoriginator({ copies: 3, intervalMs: 1000 });
  r.schedule({ key: 1, mac: VM, toward: 'lan' }, 0);
  assert.equal(r.due(0).length, 1);
  assert.equal(r.due(2500).length, 1, 'late by 1.5 s');
  assert.equal(r.due(2600).length, 0);
  assert.equal(r.due(3500).length, 1);
});
