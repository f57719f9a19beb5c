// SPDX-License-Identifier: UNLICENSED
// The agent's data path end to end in memory: TAP -> Layer-2 policy -> tunnel and back, with the real
// policy and in-memory ports (no root, no sockets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Forwarder } from '../../../../src/agent/core/forwarder.js';
import { L2Policy } from '../../../../src/agent/core/l2/policy.js';
import { ownAddressUpdater } from '../../../../src/agent/core/own-addresses.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, encodeArp, newArpView, parseArp } from '../../../../src/agent/core/l2/arp.js';
import { newEthernetView, parseEthernet } from '../../../../src/shared/l2/ethernet.js';
import { parseIpv4 } from '../../../../src/agent/core/l2/ipv4.js';
import { parseMac, macKey } from '../../../../src/shared/l2/mac.js';
import { DEFAULT_POLICY_CONFIG } from '../../../../src/agent/core/l2/policy-config.js';
import { memoryTap, memoryTunnel } from '../../../helpers/ports.js';

const HOST = { mac: macKey(parseMac('02:00:00:00:10:20')), ip: parseIpv4('192.168.10.20') };
const VM = { mac: macKey(parseMac('02:00:00:00:10:05')), ip: parseIpv4('192.168.10.5') };
const BRIDGE = macKey(parseMac('02:00:00:00:10:02'));

function setup() {
  let now = 1_000;
  const clock = { now: () => now };
  const tap = memoryTap();
  const tunnel = memoryTunnel();
  const policy = new L2Policy(DEFAULT_POLICY_CONFIG, {}, now);
  ownAddressUpdater(policy, DEFAULT_POLICY_CONFIG)({ macs: [BRIDGE], ipv4: ['192.168.10.2'], ipv6: [] });
  const fwd = new Forwarder(tap, tunnel, policy, clock);
  fwd.start();
  tunnel.start();
  return { tap, tunnel, fwd, policy, advance: (ms: number) => (now += ms) };
}

const request = (from: typeof HOST, target: number) =>
  encodeArp({ op: ARP_OP_REQUEST, senderMac: from.mac, senderIp: from.ip, targetMac: 0, targetIp: target });

test('an ARP request for a fresh DC-side binding is answered on the LAN and never crosses', () => {
  const { tap, tunnel, fwd } = setup();
  // The VM announces itself from the DC side: the binding becomes remote.
  tunnel.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: VM.mac, senderIp: VM.ip, targetMac: HOST.mac, targetIp: HOST.ip })]);
  assert.equal(tap.written.length, 1, 'the reply from the DC reaches the LAN');
  tap.inject([request(HOST, VM.ip)]);
  assert.equal(tunnel.sent.length, 0, 'the request must not cross the tunnel');
  assert.equal(fwd.counters.repliesToLan, 1);
  const reply = tap.written[1] as Buffer;
  const eth = newEthernetView();
  assert.equal(parseEthernet(reply, eth), null);
  const arp = newArpView();
  assert.equal(parseArp(reply, eth.l3Offset, arp), null);
  assert.equal(arp.op, ARP_OP_REPLY);
  assert.equal(arp.senderIp, VM.ip);
  assert.equal(arp.senderMac, VM.mac);
  assert.equal(arp.targetMac, HOST.mac);
});

test('a miss crosses the tunnel with the exact bytes, although the TAP reuses its buffer', () => {
  const { tap, tunnel } = setup();
  const req = request(HOST, VM.ip);
  tap.inject([req]);
  assert.equal(tunnel.sent.length, 1);
  assert.deepEqual(tunnel.sent[0], req);
});

test('frames to the Connector itself are never tunnelled', () => {
  const { tap, tunnel } = setup();
  tap.inject([request(HOST, parseIpv4('192.168.10.2'))]);
  assert.equal(tunnel.sent.length, 0);
});

test('frames offered while the tunnel is down are counted as drops, not queued', () => {
  const { tap, tunnel, fwd } = setup();
  tunnel.setState('backoff');
  tap.inject([request(HOST, VM.ip), request(HOST, parseIpv4('192.168.10.6'))]);
  assert.equal(tunnel.sent.length, 0);
  assert.equal(fwd.counters.tunnelQueueDrops, 2);
});

test('a binding that moves to the DC side is re-announced on the LAN by tick()', () => {
  const { tap, tunnel, fwd, advance } = setup();
  const GW = { mac: macKey(parseMac('02:00:00:00:10:01')), ip: parseIpv4('192.168.10.1') };
  tap.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: VM.mac, senderIp: VM.ip, targetMac: GW.mac, targetIp: GW.ip })]);
  advance(120_000); // the physical server went quiet long ago
  const newMac = macKey(parseMac('02:00:00:00:99:05'));
  const garp = encodeArp({ op: ARP_OP_REQUEST, senderMac: newMac, senderIp: VM.ip, targetMac: 0, targetIp: VM.ip });
  // First claim: the LAN holder is probed before the DC may take its address (it stays silent here).
  tunnel.inject([garp]);
  fwd.tick();
  const probes = tap.written.filter((f) => f.readUInt16BE(12) === 0x0806 && f.readUInt32BE(28) === 0);
  assert.equal(probes.length, 1, 'one ARP probe (sender 0.0.0.0) toward the silent LAN holder');
  advance(4_000);
  // The recovered VM announces again, as failover scripts do: now the binding moves to the DC side.
  tunnel.inject([garp]);
  const before = tap.written.length;
  for (let i = 0; i < 8; i++) {
    advance(1_000);
    fwd.tick();
  }
  const arp = newArpView();
  const eth = newEthernetView();
  const announced = tap.written
    .slice(before)
    .filter(
      (f) =>
        parseEthernet(f, eth) === null && parseArp(f, eth.l3Offset, arp) === null && arp.senderIp === VM.ip && arp.senderMac === newMac,
    );
  assert.ok(announced.length >= 2, `expected re-originated announcements of the new MAC, got ${announced.length}`);
});
