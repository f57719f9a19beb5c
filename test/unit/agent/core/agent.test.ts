// SPDX-License-Identifier: UNLICENSED
// The agent's life cycle (startAgent) over in-memory ports on a manual clock: no root, no TAP, no
// sockets, no real timers. Identity wait, bring-up, frames both ways through the policy, the status
// document, the periodic work, and a clean stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OWN_ADDRESS_REFRESH_MS, startAgent, TICK_MS, type AgentDeps } from '../../../../src/agent/core/agent.js';
import { parseAgentConfig } from '../../../../src/agent/core/config.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, encodeArp, newArpView, parseArp } from '../../../../src/agent/core/l2/arp.js';
import { encodeIpv4Udp, parseIpv4 } from '../../../../src/agent/core/l2/ipv4.js';
import type { IdentitySource, OwnAddresses, TunnelIdentity } from '../../../../src/agent/core/ports.js';
import type { StatusDoc } from '../../../../src/agent/core/status-format.js';
import { encodeEthernet, ETHERTYPE_IPV4, newEthernetView, parseEthernet } from '../../../../src/shared/l2/ethernet.js';
import { macKey, parseMac } from '../../../../src/shared/l2/mac.js';
import { createLogger, silentLogger } from '../../../../src/shared/log.js';
import { manualTime, memoryTap, memoryTunnel, type MemoryTap, type MemoryTunnel } from '../../../helpers/ports.js';

const HOST = { mac: macKey(parseMac('02:00:00:00:10:20')), ip: parseIpv4('192.168.10.20') };
const VM = { mac: macKey(parseMac('02:00:00:00:10:05')), ip: parseIpv4('192.168.10.5') };
const BRIDGE = macKey(parseMac('02:00:00:00:10:02'));
const OWN_IP = '192.168.10.2';
const ID: TunnelIdentity = { key: 'KEY', cert: 'CERT', ca: 'CA' };

const CONFIG = `config agent 'agent'\n\tlist headend 'tls://dc1.example.net'\n\toption site 'site-a'\n`;

interface Rig {
  deps: AgentDeps;
  time: ReturnType<typeof manualTime>;
  tap: MemoryTap;
  tunnel: MemoryTunnel;
  /** Resolves the identity wait. */
  identityReady(): void;
  snapshot(): StatusDoc;
  calls: string[];
}

function rig(configText = CONFIG, overrides: Partial<AgentDeps> = {}): Rig {
  const time = manualTime(10_000);
  const tap = memoryTap();
  const tunnel = memoryTunnel();
  const calls: string[] = [];
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  let snapshot: (() => StatusDoc) | undefined;
  const identity: IdentitySource = {
    ready: () => readyP,
    current: async () => ID,
    status: () => ({ state: 'ready', serial: 'CN-0001' }),
    close: async () => void calls.push('identity.close'),
  };
  const own: OwnAddresses = { macs: [BRIDGE], ipv4: [OWN_IP], ipv6: [] };
  const deps: AgentDeps = {
    config: parseAgentConfig(configText),
    version: '9.9.9-test',
    pid: 4242,
    log: silentLogger,
    clock: time.clock,
    scheduler: time.scheduler,
    identity,
    openTap: async () => {
      calls.push('openTap');
      return tap;
    },
    attachTap: async () => void calls.push('attachTap'),
    readOwnAddresses: async () => {
      calls.push('readOwnAddresses');
      return own;
    },
    createTunnel: (getIdentity) => {
      calls.push('createTunnel');
      void getIdentity().then((id) => assert.deepEqual(id, ID));
      return tunnel;
    },
    serveStatus: async (s) => {
      snapshot = s;
      calls.push('serveStatus');
      return { close: async () => void calls.push('status.close') };
    },
    ...overrides,
  };
  return {
    deps,
    time,
    tap,
    tunnel,
    calls,
    identityReady: () => ready(),
    snapshot: () => {
      assert.ok(snapshot, 'the status endpoint is served');
      return snapshot();
    },
  };
}

const arpRequest = (from: typeof HOST, target: number): Buffer =>
  encodeArp({ op: ARP_OP_REQUEST, senderMac: from.mac, senderIp: from.ip, targetMac: 0, targetIp: target });

function arpOf(frame: Buffer | undefined): ReturnType<typeof newArpView> {
  assert.ok(frame);
  const eth = newEthernetView();
  assert.equal(parseEthernet(frame, eth), null);
  const arp = newArpView();
  assert.equal(parseArp(frame, eth.l3Offset, arp), null);
  return arp;
}

test('startAgent: status while waiting for the identity, then bring-up, frames both ways, status, stop', async () => {
  const r = rig();
  const agent = await startAgent(r.deps);
  assert.deepEqual(r.calls, ['serveStatus'], 'status is served before anything waits');
  const waiting = r.snapshot();
  assert.equal(waiting.phase, 'identity');
  assert.match(waiting.reason ?? '', /operational identity/);
  assert.equal(waiting.pid, 4242);
  assert.equal(waiting.tunnel, undefined);

  r.identityReady();
  await agent.up;
  assert.deepEqual(r.calls, ['serveStatus', 'openTap', 'attachTap', 'readOwnAddresses', 'createTunnel']);
  assert.equal(r.tunnel.state, 'up', 'the tunnel was started');

  // The VM announces itself from the DC side; the LAN asks for it: answered locally, nothing crosses.
  r.tunnel.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: VM.mac, senderIp: VM.ip, targetMac: HOST.mac, targetIp: HOST.ip })]);
  assert.equal(r.tap.written.length, 1, 'the DC frame reaches the LAN');
  r.tap.inject([arpRequest(HOST, VM.ip)]);
  assert.equal(r.tunnel.sent.length, 0);
  const reply = arpOf(r.tap.written[1]);
  assert.equal(reply.op, ARP_OP_REPLY);
  assert.equal(reply.senderIp, VM.ip);
  assert.equal(reply.senderMac, VM.mac);
  // A miss crosses the tunnel; a request for the Connector's own address (from the host) does not.
  const miss = arpRequest(HOST, parseIpv4('192.168.10.77'));
  r.tap.inject([miss]);
  assert.deepEqual(r.tunnel.sent, [miss]);
  r.tap.inject([arpRequest(HOST, parseIpv4(OWN_IP))]);
  assert.equal(r.tunnel.sent.length, 1);

  const s = r.snapshot();
  assert.equal(s.phase, 'running');
  assert.equal(s.version, '9.9.9-test');
  assert.deepEqual(s.identity, { state: 'ready', serial: 'CN-0001' });
  assert.deepEqual(s.tunnel, { state: 'up' });
  const counters = s.counters as {
    forwarder: Record<string, number>;
    core: { fromLan: { answered: number; drops: Record<string, number> } };
  };
  assert.equal(counters.forwarder['lanRxFrames'], 3);
  assert.equal(counters.forwarder['tunnelRxFrames'], 1);
  assert.equal(counters.forwarder['repliesToLan'], 1);
  assert.equal(counters.core.fromLan.answered, 1);
  assert.equal(counters.core.fromLan.drops['own-traffic'], 1);
  assert.deepEqual(s.macTable?.map((e) => [e['mac'], e['side']]).sort(), [
    ['02:00:00:00:10:05', 'tunnel'],
    ['02:00:00:00:10:20', 'lan'],
  ]);
  assert.deepEqual(s.neighbours?.map((n) => [n['ip'], n['side'], n['holder']]).sort(), [
    ['192.168.10.20', 'lan', true],
    ['192.168.10.5', 'tunnel', true],
  ]);
  assert.equal(s.uptimeS, 0);

  // Periodic work runs on the injected scheduler only: table housekeeping, own addresses re-read.
  r.time.advance(OWN_ADDRESS_REFRESH_MS);
  await Promise.resolve();
  assert.equal(r.calls.filter((c) => c === 'readOwnAddresses').length, 2);
  assert.equal(r.snapshot().uptimeS, OWN_ADDRESS_REFRESH_MS / 1000);
  assert.ok(TICK_MS < OWN_ADDRESS_REFRESH_MS);

  await agent.stop();
  assert.equal(r.tunnel.state, 'closed');
  assert.deepEqual(r.calls.slice(-2), ['identity.close', 'status.close']);
  assert.equal(r.time.pending(), 0, 'no timer left behind');
  assert.equal(r.snapshot().phase, 'stopping');
});

test('startAgent: learned MACs age out on the tick of the injected scheduler', async () => {
  const r = rig();
  const agent = await startAgent(r.deps);
  r.identityReady();
  await agent.up;
  r.tap.inject([encodeArp({ op: ARP_OP_REPLY, senderMac: HOST.mac, senderIp: HOST.ip, targetMac: VM.mac, targetIp: VM.ip })]);
  assert.equal(r.snapshot().macTable?.length, 1);
  r.time.advance(300_000 + TICK_MS);
  assert.equal(r.snapshot().macTable?.length, 0, 'aged out by the tick after 300 s');
  await agent.stop();
});

test('startAgent: without a headend it stays idle with a reason, and never opens the TAP', async () => {
  const r = rig(`config agent 'agent'\n`);
  const agent = await startAgent(r.deps);
  r.identityReady();
  await agent.up;
  const s = r.snapshot();
  assert.equal(s.phase, 'idle');
  assert.match(s.reason ?? '', /no headend configured/);
  assert.deepEqual(r.calls, ['serveStatus']);
  await agent.stop();
});

test('startAgent: a failed bring-up rejects `up`, says why in the status and releases everything', async () => {
  const lines: string[] = [];
  const r = rig(CONFIG, {
    openTap: async () => {
      throw new Error('no /dev/net/tun');
    },
    log: createLogger({ format: 'human', level: 'debug', write: (l) => lines.push(l) }),
  });
  const agent = await startAgent(r.deps);
  r.identityReady();
  await assert.rejects(agent.up, /no \/dev\/net\/tun/);
  const s = r.snapshot();
  assert.equal(s.phase, 'failed', 'what was opened is released, and the status still says it failed');
  assert.ok(!lines.some((l) => l.includes('agent stopped')), `no clean stop logged for a failed start: ${lines.join(' | ')}`);
  assert.equal(s.reason, 'no /dev/net/tun');
  assert.deepEqual(r.calls.slice(-2), ['identity.close', 'status.close']);
  assert.equal(r.time.pending(), 0);
});

test('startAgent: a stop while waiting for the identity is not a failure', async () => {
  const r = rig();
  const agent = await startAgent(r.deps);
  await agent.stop();
  r.identityReady();
  await agent.up;
  assert.deepEqual(r.calls, ['serveStatus', 'identity.close', 'status.close']);
});

test('startAgent: a DHCP offer from the datacentre reaches the LAN only when the headend grants dhcp-from-dc', async () => {
  const offer = encodeEthernet({
    dst: macKey(parseMac('ff:ff:ff:ff:ff:ff')),
    src: VM.mac,
    etherType: ETHERTYPE_IPV4,
    payload: encodeIpv4Udp({ src: VM.ip, dst: 0xffffffff, srcPort: 67, dstPort: 68, payload: Buffer.alloc(240) }),
  });
  for (const granted of [false, true]) {
    const r = rig();
    r.tunnel.capabilities = granted ? ['dhcp-from-dc'] : [];
    const agent = await startAgent(r.deps);
    r.identityReady();
    await agent.up;
    const before = r.tap.written.length;
    r.tunnel.inject([offer]);
    assert.equal(r.tap.written.length - before, granted ? 1 : 0, granted ? 'granted: the offer reaches the LAN' : 'not granted: dropped');
    await agent.stop();
  }
});
