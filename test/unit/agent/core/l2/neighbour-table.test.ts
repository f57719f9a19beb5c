// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NeighbourTable, ipv6Key, neighbourKeyToString } from '../../../../../src/agent/core/l2/neighbour-table.js';
import { AlarmSet } from '../../../../../src/agent/core/l2/alarms.js';
import { parseIpv4 } from '../../../../../src/agent/core/l2/ipv4.js';
import { parseIpv6 } from '../../../../../src/agent/core/l2/nd.js';
import { prng as rng } from '../../../../helpers/prng.js';

const IP = parseIpv4('192.0.2.10');
const SERVER = 0x02_00_00_00_00_01; // the physical server on the LAN
const VM = 0x02_00_00_00_00_02; // its recovered VM in the DC
const W = 60_000;

test('learning, refresh and aging', () => {
  const t = new NeighbourTable({ ageMs: 600_000 });
  assert.equal(t.observe(IP, SERVER, 'lan', 'arp', 0), 'new');
  assert.equal(t.observe(IP, SERVER, 'lan', 'garp', 1000), 'refreshed');
  assert.equal(t.lookup(IP, 600_999)?.lan?.source, 'garp');
  assert.equal(t.lookup(IP, 601_000), undefined);
  assert.equal(t.sweep(601_000), 1);
});

test('DR failover: the VM claims the IP after the server went quiet -> verified, then a move', () => {
  const t = new NeighbourTable({ splitBrainWindowMs: W, verifyMs: 3000 });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  // The VM boots 5 s after the server's last sighting: contested, the LAN keeps the address.
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 5000), 'contested');
  assert.equal(t.lookup(IP, 5000)?.current, 'lan');
  assert.equal(t.isSplitBrain(IP, 5000), false, 'the claims do not overlap: not a split brain');
  // Past the window, silence is not proof: the server is probed first.
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', W + 1), 'verify');
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', W + 2), 'contested', 'one probe per verification');
  assert.equal(t.lookup(IP, W + 2)?.current, 'lan');
  // No answer within verifyMs: the next claim moves the IP.
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', W + 1 + 3000), 'moved');
  assert.equal(t.lookup(IP, W + 3001)?.current, 'tunnel');
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', W + 3002), 'refreshed');
});

test('a LAN holder answering the verification probe turns the claim into a split brain', () => {
  const t = new NeighbourTable({ splitBrainWindowMs: W, verifyMs: 3000 });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 200_000), 'verify');
  assert.equal(t.observe(IP, SERVER, 'lan', 'arp', 200_500), 'split-brain', 'the probe reply');
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', 204_000), 'split-brain');
  assert.equal(t.lookup(IP, 204_000)?.current, 'lan');
});

test('with verification off, a remote claim for an address quiet on the LAN for the window moves at once', () => {
  const t = new NeighbourTable({ splitBrainWindowMs: W, verifyMs: 0 });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 200_000), 'moved');
});

test('a verification is valid for one window; a much later claim is verified again', () => {
  const t = new NeighbourTable({ splitBrainWindowMs: W, verifyMs: 3000 });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 100_000), 'verify');
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 103_000 + W), 'verify');
});

test('split brain: both sides keep claiming with different MACs -> alarm; it clears when one side stops', () => {
  const alarms = new AlarmSet();
  const t = new NeighbourTable({ splitBrainWindowMs: W, alarms });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 1000), 'contested');
  assert.equal(t.observe(IP, SERVER, 'lan', 'arp', 2000), 'split-brain');
  assert.equal(t.isSplitBrain(IP, 2000), true);
  assert.ok(alarms.isActive('split-brain', '192.0.2.10'));
  assert.equal(t.observe(IP, VM, 'tunnel', 'arp', 3000), 'split-brain');
  assert.equal(t.proxyClaim(IP, 3000, 120_000), null, 'never proxied during a split brain');
  // The VM is shut down: after the window the condition is over and housekeeping clears the alarm.
  t.observe(IP, SERVER, 'lan', 'arp', 3000 + W);
  t.sweep(3000 + W);
  assert.equal(t.isSplitBrain(IP, 3000 + W), false);
  assert.equal(alarms.isActive('split-brain', '192.0.2.10'), false);
});

test('failback: the server returns after the VM is gone -> a move back to the LAN', () => {
  const t = new NeighbourTable({ splitBrainWindowMs: W });
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 100_000), 'verify');
  assert.equal(t.observe(IP, VM, 'tunnel', 'garp', 103_000), 'moved');
  assert.equal(t.lookup(IP, 103_000)?.current, 'tunnel');
  assert.equal(t.observe(IP, SERVER, 'lan', 'garp', 300_000), 'moved');
  assert.equal(t.lookup(IP, 300_000)?.current, 'lan');
});

test('a new MAC on the same side is a move (NIC swap); the same MAC on the other side is a move too', () => {
  const t = new NeighbourTable();
  t.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t.observe(IP, VM, 'lan', 'garp', 10), 'moved');
  const t2 = new NeighbourTable();
  t2.observe(IP, SERVER, 'lan', 'arp', 0);
  assert.equal(t2.observe(IP, SERVER, 'tunnel', 'garp', 10), 'moved', 'same MAC: a migrated VM, not a split brain');
});

test('proxyClaim: only for the remote holder, only while fresh', () => {
  const t = new NeighbourTable();
  t.observe(IP, VM, 'tunnel', 'arp', 0);
  assert.equal(t.proxyClaim(IP, 119_999, 120_000)?.mac, VM);
  assert.equal(t.proxyClaim(IP, 120_000, 120_000), null, 'stale');
  const local = parseIpv4('192.0.2.20');
  t.observe(local, SERVER, 'lan', 'arp', 0);
  assert.equal(t.proxyClaim(local, 1, 120_000), null, 'never for a local target');
  assert.equal(t.proxyClaim(parseIpv4('192.0.2.99'), 1, 120_000), null, 'unknown');
});

test('static bindings never age or move; a conflicting claim alarms', () => {
  const alarms = new AlarmSet();
  const t = new NeighbourTable({ alarms });
  const gw = parseIpv4('192.0.2.1');
  t.addStatic(gw, VM, 'tunnel');
  assert.equal(t.proxyClaim(gw, 10 ** 9, 1000)?.mac, VM);
  assert.equal(t.observe(gw, VM, 'tunnel', 'arp', 5), 'refreshed');
  assert.equal(t.observe(gw, SERVER, 'lan', 'garp', 5), 'static-conflict');
  assert.ok(alarms.isActive('neighbour-static-conflict', '192.0.2.1'));
  assert.equal(t.lookup(gw, 5)?.current, 'tunnel');
});

test('a full table refuses new IPs with an alarm and keeps the old ones', () => {
  const alarms = new AlarmSet();
  const t = new NeighbourTable({ maxEntries: 3, ageMs: 1000, alarms });
  for (let i = 0; i < 3; i++) assert.equal(t.observe(IP + i, SERVER + i, 'lan', 'arp', 0), 'new');
  assert.equal(t.observe(IP + 5, VM, 'tunnel', 'arp', 1), 'table-full');
  assert.ok(alarms.isActive('neighbour-table-full', ''));
  assert.equal(t.size, 3);
  assert.equal(t.observe(IP + 5, VM, 'tunnel', 'arp', 1000), 'new', 'aged bindings make room');
});

test('IPv6 keys are 32 hex digits and print in RFC 5952 form', () => {
  const ip = parseIpv6('fd00::10');
  const key = ipv6Key(ip);
  assert.equal(key, 'fd000000000000000000000000000010');
  assert.equal(neighbourKeyToString(key), 'fd00::10');
  assert.equal(neighbourKeyToString(IP), '192.0.2.10');
  const t = new NeighbourTable();
  assert.equal(t.observe(key, VM, 'tunnel', 'nd', 0, true), 'new');
  assert.equal(t.proxyClaim(key, 1, 1000)?.router, true);
});

test('invariants over seeded random claims: bounds, split brain and proxy answers are consistent', () => {
  for (let seed = 1; seed <= 100; seed++) {
    const r = rng(seed);
    const age = 100 * (20 + Math.floor(r() * 200));
    const win = 100 * (5 + Math.floor(r() * 100));
    const max = 2 + Math.floor(r() * 8);
    const alarms = new AlarmSet();
    const t = new NeighbourTable({ ageMs: age, splitBrainWindowMs: win, maxEntries: max, alarms });
    const ips = Array.from({ length: 3 + Math.floor(r() * 10) }, (_, i) => IP + i);
    const macs = [SERVER, VM, VM + 1];
    let now = 0;
    for (let op = 0; op < 1500; op++) {
      const ctx = `seed ${seed}, op ${op}, now ${now}`;
      if (r() < 0.3) now += 100 * Math.floor(r() * (r() < 0.9 ? 10 : 300));
      const ip = ips[Math.floor(r() * ips.length)] ?? IP;
      const side = r() < 0.5 ? 'lan' : 'tunnel';
      const mac = macs[Math.floor(r() * macs.length)] ?? VM;
      const before = t.lookup(ip, now);
      const prevCurrent = before?.current;
      const res = t.observe(ip, mac, side, 'arp', now);
      const b = t.lookup(ip, now);
      if (res === 'table-full') {
        assert.equal(b, undefined, `${ctx}: refused but present`);
        assert.equal(t.liveCount(now), max, `${ctx}: refused while not full`);
        continue;
      }
      assert.ok(b, `${ctx}: ${res} but not stored`);
      const split = t.isSplitBrain(ip, now);
      assert.equal(res === 'split-brain', split, `${ctx}: result ${res} vs isSplitBrain ${split}`);
      if (split) {
        assert.ok(b.lan && b.tunnel && b.lan.mac !== b.tunnel.mac, `${ctx}: split brain needs two different claims`);
        assert.ok(now - b.lan.lastSeenMs < win && now - b.tunnel.lastSeenMs < win, `${ctx}: split brain needs two fresh claims`);
        assert.ok(alarms.isActive('split-brain', neighbourKeyToString(ip)), `${ctx}: split brain without alarm`);
        assert.equal(t.proxyClaim(ip, now, age), null, `${ctx}: proxy during split brain`);
        assert.equal(b.current, prevCurrent, `${ctx}: a split brain must not change the holder`);
      }
      if (res === 'contested' || res === 'verify') {
        assert.equal(side, 'tunnel');
        assert.equal(b.current, 'lan', `${ctx}: contested claims leave the LAN holding the IP`);
      }
      if (res === 'moved' || res === 'new') assert.equal(b.current, side, `${ctx}: ${res} must make ${side} the holder`);
      const claim = t.proxyClaim(ip, now, age);
      if (claim !== null) {
        assert.equal(b.current, 'tunnel', `${ctx}: proxy for a local holder`);
        assert.equal(claim, b.tunnel);
      }
      if (r() < 0.05) t.sweep(now);
      assert.ok(t.size <= max, `${ctx}: size ${t.size} > ${max}`);
      if (r() < 0.02) {
        // After the window with only one side talking, no split-brain alarm may remain.
        now += win;
        t.observe(ip, mac, side, 'arp', now);
        t.sweep(now);
        assert.equal(t.isSplitBrain(ip, now), false, `${ctx}: split brain outlived the window`);
        assert.equal(alarms.isActive('split-brain', neighbourKeyToString(ip)), false, `${ctx}: stale split-brain alarm`);
      }
    }
  }
});
