// SPDX-License-Identifier: UNLICENSED
// Several networks per Connector (issue 15, item 3): the LAN port as an 802.1Q trunk in user space. Tags
// of configured VLANs are popped on the way in and pushed on the way out; untagged, priority-tagged and
// unconfigured tags stay on the untagged device; and through the whole agent, two VLANs with identical
// addressing reach two separate tunnel sessions with separate tables: nothing crosses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startAgent } from '../../../../src/agent/core/agent.js';
import { parseAgentConfig } from '../../../../src/agent/core/config.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, encodeArp } from '../../../../src/agent/core/l2/arp.js';
import { parseIpv4 } from '../../../../src/agent/core/l2/ipv4.js';
import { vlanTrunk } from '../../../../src/agent/core/vlan-trunk.js';
import { newEthernetView, parseEthernet } from '../../../../src/shared/l2/ethernet.js';
import { macKey, parseMac } from '../../../../src/shared/l2/mac.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { ConfigError } from '../../../../src/shared/errors.js';
import { manualTime, memoryTap, memoryTunnel, type MemoryTunnel } from '../../../helpers/ports.js';

const HOST = { mac: macKey(parseMac('02:00:00:00:10:20')), ip: parseIpv4('10.0.0.20') };
const HOST_B = { mac: macKey(parseMac('02:00:00:00:20:20')), ip: parseIpv4('10.0.0.20') };
const VM_A = { mac: macKey(parseMac('02:00:00:00:10:05')), ip: parseIpv4('10.0.0.5') };
const VM_B = { mac: macKey(parseMac('02:00:00:00:20:05')), ip: parseIpv4('10.0.0.5') };

const request = (from: typeof HOST, target: number, vid?: number): Buffer =>
  encodeArp({
    op: ARP_OP_REQUEST,
    senderMac: from.mac,
    senderIp: from.ip,
    targetMac: 0,
    targetIp: target,
    ...(vid !== undefined ? { vlans: [{ tci: vid }] } : {}),
  });

function vidOf(frame: Buffer | undefined): number | undefined {
  assert.ok(frame);
  const eth = newEthernetView();
  assert.equal(parseEthernet(frame, eth), null);
  return eth.vlanCount === 0 ? undefined : eth.vlanTci & 0x0fff;
}

test('trunk: a configured tag is popped in and pushed out; others stay untagged', () => {
  const tap = memoryTap();
  const trunk = vlanTrunk(tap, [10, 20]);
  const got: Record<string, Buffer[]> = { u: [], 10: [], 20: [] };
  trunk.untagged.onFrames((fs) => got['u']?.push(...fs.map((f) => Buffer.from(f))));
  trunk.device(10).onFrames((fs) => got['10']?.push(...fs.map((f) => Buffer.from(f))));
  trunk.device(20).onFrames((fs) => got['20']?.push(...fs.map((f) => Buffer.from(f))));
  const plain = request(HOST, VM_A.ip);
  const t10 = request(HOST, VM_A.ip, 10);
  const t20 = request(HOST_B, VM_B.ip, 20);
  const t30 = request(HOST, VM_A.ip, 30);
  const prio = request(HOST, VM_A.ip, 0);
  tap.inject([t10, plain, t20, t30, prio, t10]);
  assert.deepEqual(got['10'], [plain, plain], 'VLAN 10 sees its frames without the tag');
  assert.deepEqual(got['20'], [request(HOST_B, VM_B.ip)]);
  assert.deepEqual(got['u'], [plain, t30, prio], 'untagged, unconfigured and priority-tagged stay on the untagged device');
  assert.deepEqual(trunk.counters.popped, { 10: 2, 20: 1 });

  assert.equal(trunk.device(20).writeFrames([plain, plain]), 2);
  assert.equal(trunk.untagged.writeFrames([plain]), 1);
  assert.deepEqual(tap.written, [tagged(plain, 20), tagged(plain, 20), plain]);
  assert.deepEqual(trunk.counters.pushed, { 10: 0, 20: 2 });
  assert.throws(() => trunk.device(30), RangeError);
  assert.throws(() => vlanTrunk(memoryTap(), [4095]), RangeError);
});

function tagged(frame: Buffer, vid: number): Buffer {
  const tag = Buffer.from([0x81, 0x00, (vid >> 8) & 0x0f, vid & 0xff]);
  return Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
}

test('config: list vlan maps VLAN IDs to names; bad or repeated IDs are refused with the key', () => {
  const base = `config agent 'agent'\n\tlist headend 'tls://dc1.example.net'\n`;
  const c = parseAgentConfig(`${base}\tlist vlan '10:servers'\n\tlist vlan '20:voice'\n`);
  assert.deepEqual(c.vlans, [
    { vid: 10, name: 'servers' },
    { vid: 20, name: 'voice' },
  ]);
  assert.deepEqual(parseAgentConfig(base).vlans, []);
  for (const bad of ['0:x', '4095:x', 'servers', '10', '10:', "10:servers'\n\tlist vlan '10:again"]) {
    assert.throws(
      () => parseAgentConfig(`${base}\tlist vlan '${bad}'\n`),
      (e: unknown) => e instanceof ConfigError && e.key === 'agent.vlan',
      bad,
    );
  }
});

test('agent: two VLANs with identical addressing ride two sessions; 0 frames cross', async () => {
  const time = manualTime(10_000);
  const tap = memoryTap();
  const tunnels = new Map<number, MemoryTunnel>();
  const agent = await startAgent({
    config: parseAgentConfig(`config agent 'agent'\n\tlist headend 'tls://dc1.example.net'\n\tlist vlan '10:a'\n\tlist vlan '20:b'\n`),
    version: 't',
    pid: 1,
    log: silentLogger,
    clock: time.clock,
    scheduler: time.scheduler,
    identity: { ready: async () => {}, current: async () => ({ key: '', cert: '', ca: '' }), status: () => ({}), close: async () => {} },
    openTap: async () => tap,
    attachTap: async () => {},
    readOwnAddresses: async () => ({ macs: [], ipv4: [], ipv6: [] }),
    createTunnel: (_id, vlan) => {
      const t = memoryTunnel();
      tunnels.set(vlan ?? 0, t);
      return t;
    },
    serveStatus: async () => ({ close: async () => {} }),
  });
  await agent.up;
  assert.deepEqual([...tunnels.keys()].sort(), [0, 10, 20], 'one session for untagged, one per VLAN');
  const [u, a, b] = [tunnels.get(0), tunnels.get(10), tunnels.get(20)] as [MemoryTunnel, MemoryTunnel, MemoryTunnel];

  // The same IP asked on both VLANs: each question leaves, untagged, on its own VLAN's session only.
  tap.inject([request(HOST, VM_A.ip, 10), request(HOST_B, VM_B.ip, 20)]);
  assert.deepEqual(a.sent, [request(HOST, VM_A.ip)]);
  assert.deepEqual(b.sent, [request(HOST_B, VM_B.ip)]);
  assert.equal(u.sent.length, 0);
  // Each VM answers on its own segment: the answer reaches the LAN tagged with that segment's VLAN.
  a.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: VM_A.mac, senderIp: VM_A.ip, targetMac: HOST.mac, targetIp: HOST.ip })]);
  b.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: VM_B.mac, senderIp: VM_B.ip, targetMac: HOST_B.mac, targetIp: HOST_B.ip })]);
  assert.deepEqual(tap.written.map(vidOf), [10, 20]);
  // The proxies learned per VLAN: the same IP is answered with each VLAN's own VM, tagged with that VLAN.
  tap.inject([request(HOST, VM_A.ip, 10), request(HOST_B, VM_B.ip, 20)]);
  assert.equal(a.sent.length + b.sent.length, 2, 'answered locally, nothing more crossed');
  const answers = tap.written.slice(2);
  assert.deepEqual(answers.map(vidOf), [10, 20]);
  assert.ok(answers[0]?.includes(Buffer.from('020000001005', 'hex')) && !answers[0]?.includes(Buffer.from('020000002005', 'hex')));
  assert.ok(answers[1]?.includes(Buffer.from('020000002005', 'hex')) && !answers[1]?.includes(Buffer.from('020000001005', 'hex')));
  // An unconfigured tag reaches no session (the untagged policy drops tagged frames).
  tap.inject([request(HOST, VM_A.ip, 30)]);
  assert.equal(u.sent.length + a.sent.length + b.sent.length, 2);
  await agent.stop();
});
