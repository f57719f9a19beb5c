// SPDX-License-Identifier: UNLICENSED
// The agent's TLS tunnel client against real headend processes on 127.0.0.1: hello and VNI, frames both
// ways, RTT; kill -9 + restart (reconnect with backoff, traffic resumes, recovery time printed);
// failover to the second headend; dead-peer detection against a SIGSTOP'd headend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createTunnelClient, type TunnelClient as ClientLink } from '../../../../src/agent/adapters/tunnel-client.js';
import type { TunnelLink as PortTunnelLink } from '../../../../src/agent/core/ports.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { writeVxlanHeader } from '../../../../src/shared/l2/vxlan.js';
import { headendConfigDoc, registryDoc, spawnHeadend, testFrame, writeJson, type HeadendProcess } from '../../headend/adapters/fixtures.js';
import { createTestPki, type Identity, type TestPki } from '../../../helpers/pki.js';
import { tempDir, type TempDir } from '../../../helpers/tmp.js';
import { waitFor } from '../../../helpers/wait.js';

// The client satisfies the agent's port interface (compile-time check).
const _portCompatible = (l: ClientLink): PortTunnelLink => l;
void _portCompatible;

interface Vtep {
  sock: Socket;
  port: number;
  got: Buffer[];
}

async function vtep(t: { after(fn: () => void): void }): Promise<Vtep> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.2', () => r()));
  t.after(() => sock.close());
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  return { sock, port: (sock.address() as AddressInfo).port, got };
}

function toHeadend(v: Vtep, port: number, frame: Buffer): void {
  const pkt = Buffer.alloc(8 + frame.length);
  writeVxlanHeader(pkt, 0, 100);
  frame.copy(pkt, 8);
  v.sock.send(pkt, port, '127.0.0.1');
}

interface Env {
  d: TempDir;
  pki: TestPki;
  id: Identity;
  v: Vtep;
  start(name: string, port?: number): Promise<HeadendProcess>;
}

async function env(t: { after(fn: () => void | Promise<void>): void }): Promise<Env> {
  const d = tempDir(t, 'ck-tun-', true);
  const pki = await createTestPki(d.dir);
  const id = await pki.client('CN-0001');
  const v = await vtep(t);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100, vteps: ['127.0.0.2'] } }, { 'CN-0001': 'acme' }));
  const procs: HeadendProcess[] = [];
  t.after(async () => {
    for (const p of procs) {
      p.child.kill('SIGCONT');
      await p.kill('SIGKILL');
    }
    d.remove();
  });
  return {
    d,
    pki,
    id,
    v,
    async start(name, port = 0) {
      const doc = headendConfigDoc(d, pki, { listenPort: port, vtepPort: v.port, metricsPort: null, keepaliveMs: 500, deadAfterMs: 2_000 });
      doc['auditLog'] = d.path(`audit-${name}.jsonl`);
      writeJson(d.path(`${name}.json`), doc);
      const p = await spawnHeadend(d.path(`${name}.json`));
      procs.push(p);
      return p;
    },
  };
}

function client(e: Env, ports: number[]): ClientLink {
  return createTunnelClient({
    headends: ports.map((p) => new URL(`tls://127.0.0.1:${p}`)),
    getIdentity: async () => ({ key: e.id.key, cert: e.id.cert, ca: e.pki.dcCa.pem }),
    hello: { agentVersion: '0.1.0-test', site: 'site-a', capabilities: ['l2'] },
    keepaliveMs: 250,
    deadAfterMs: 1_500,
    backoff: { initialMs: 100, maxMs: 1_000, jitter: 0.3 },
    sendQueueFrames: 64,
    log: silentLogger,
  });
}

async function roundTrip(e: Env, link: ClientLink, h: HeadendProcess, tag: string, received: Buffer[]): Promise<void> {
  const before = e.v.got.length;
  link.sendFrames([testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', `up-${tag}`)]);
  await waitFor(`frame ${tag} at the VTEP`, 5_000, () => e.v.got.slice(before).some((p) => p.includes(Buffer.from(`up-${tag}`))));
  const pkt = e.v.got.slice(before).find((p) => p.includes(Buffer.from(`up-${tag}`)));
  assert.equal(pkt?.readUIntBE(4, 3), 100);
  toHeadend(e.v, h.vxlanPort, testFrame('02:00:00:00:00:05', '02:00:00:00:00:01', `down-${tag}`));
  await waitFor(`frame ${tag} at the agent`, 5_000, () => received.some((f) => f.includes(Buffer.from(`down-${tag}`))));
}

test('agent client: hello, registry VNI, frames both ways, RTT', async (t) => {
  const e = await env(t);
  const h = await e.start('h1');
  const link = client(e, [h.tunnelPort]);
  t.after(() => link.close());
  const received: Buffer[] = [];
  link.onFrames((fs) => received.push(...fs.map((f) => Buffer.from(f))));
  const states: string[] = [];
  link.onStateChange((s) => states.push(s));
  assert.equal(link.sendFrames([testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', 'early')]), 0);
  link.start();
  await waitFor('tunnel up', 10_000, () => link.state === 'up');
  assert.deepEqual(states, ['connecting', 'up']);
  assert.equal(link.status().vni, 100);
  await roundTrip(e, link, h, 'a', received);
  await waitFor('RTT', 5_000, () => link.status().rttMs !== null);
  const st = link.status();
  assert.ok((st.rttMs ?? -1) >= 0);
  assert.equal(st.counters.txFrames, 1);
  assert.equal(st.counters.rxFrames, 1);
  assert.equal(st.counters.notUpDrops, 1);
  t.diagnostic(`tunnel RTT over loopback TLS: ${st.rttMs} ms`);
  await link.close();
  assert.equal(link.state, 'closed');
  await h.waitForLine((l) => l['msg'] === 'session closed' && l['reason'] === 'bye:agent-shutdown');
});

test('agent client: kill -9 of the headend and restart: reconnects with backoff, traffic resumes', async (t) => {
  const e = await env(t);
  let h = await e.start('h1');
  const port = h.tunnelPort;
  const link = client(e, [port]);
  t.after(() => link.close());
  const received: Buffer[] = [];
  link.onFrames((fs) => received.push(...fs.map((f) => Buffer.from(f))));
  link.start();
  await waitFor('tunnel up', 10_000, () => link.state === 'up');
  await roundTrip(e, link, h, 'before', received);
  await h.kill('SIGKILL');
  await waitFor('tunnel down after kill', 5_000, () => link.state !== 'up');
  await new Promise((r) => setTimeout(r, 1_500)); // several failed attempts: backoff grows
  const failedAttempts = link.status().reconnects;
  assert.ok(failedAttempts >= 2, `reconnect attempts while the headend was down: ${failedAttempts}`);
  h = await e.start('h1', port);
  const back = performance.now();
  await waitFor('tunnel up again', 10_000, () => link.state === 'up');
  t.diagnostic(`recovery after headend restart: ${Math.round(performance.now() - back)} ms (attempts while down: ${failedAttempts})`);
  await roundTrip(e, link, h, 'after', received);
});

test('agent client: fails over to the second headend of the list', async (t) => {
  const e = await env(t);
  const h1 = await e.start('h1');
  const h2 = await e.start('h2');
  const link = client(e, [h1.tunnelPort, h2.tunnelPort]);
  t.after(() => link.close());
  const received: Buffer[] = [];
  link.onFrames((fs) => received.push(...fs.map((f) => Buffer.from(f))));
  const ups: string[] = [];
  link.onStateChange((s, info) => {
    if (s === 'up') ups.push(info.headend ?? '');
  });
  link.start();
  await waitFor('tunnel up', 10_000, () => link.state === 'up');
  assert.equal(ups[0], `127.0.0.1:${h1.tunnelPort}`);
  await h1.kill('SIGKILL');
  const t0 = performance.now();
  await waitFor('up on the second headend', 10_000, () => ups.length === 2);
  t.diagnostic(`failover to the second headend: ${Math.round(performance.now() - t0)} ms`);
  assert.equal(ups[1], `127.0.0.1:${h2.tunnelPort}`);
  await roundTrip(e, link, h2, 'h2', received);
});

test('agent client: dead-peer detection against a stopped (SIGSTOP) headend, in seconds', async (t) => {
  const e = await env(t);
  const h = await e.start('h1');
  const link = client(e, [h.tunnelPort]);
  t.after(() => link.close());
  link.start();
  await waitFor('tunnel up', 10_000, () => link.state === 'up');
  const reasons: string[] = [];
  link.onStateChange((s, info) => {
    if (s === 'backoff') reasons.push(info.reason ?? '');
  });
  h.child.kill('SIGSTOP');
  const t0 = performance.now();
  // While the peer is stopped, offered frames fill the socket budget, then the queue head-drops:
  // memory and queueing delay stay bounded instead of growing with the backlog.
  const big = Buffer.alloc(1514, 0x55);
  big.fill(0xff, 0, 6);
  const batch = Array.from({ length: 64 }, () => big);
  for (let i = 0; i < 400 && link.state === 'up'; i++) {
    link.sendFrames(batch);
    await new Promise((r) => setImmediate(r));
  }
  const congested = link.status();
  t.diagnostic(
    `while stopped: queued ${congested.queuedFrames}, head-dropped ${congested.counters.queueOverflowDrops}, aqm-dropped ${congested.counters.queueAqmDrops}, sent ${congested.counters.txFrames}`,
  );
  assert.ok(congested.counters.queueOverflowDrops > 0, 'the full queue head-drops');
  assert.ok(congested.queuedFrames <= 64);
  // The TCP connection stays open (the kernel still ACKs): only the keepalive can tell the peer is gone.
  await waitFor('dead peer detected', 10_000, () => reasons.length > 0);
  t.diagnostic(`dead-peer detected after ${Math.round(performance.now() - t0)} ms (deadAfterMs 1500)`);
  assert.equal(reasons[0], 'dead-peer');
  h.child.kill('SIGCONT');
  await waitFor('tunnel back after SIGCONT', 10_000, () => link.state === 'up');
});
