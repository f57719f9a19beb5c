// SPDX-License-Identifier: UNLICENSED
// The tunnel protocol's contract, one suite run twice: a client session (the agent's) and a server session
// (the headend's) over an in-memory pipe, and over real TLS 1.3 sockets on loopback with the transport
// both programs use. Time is manual on each side, so keepalive, RTT and dead-peer cases are exact; only
// the bytes travel for real.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { ALPN_PROTOCOL, CONTROL_VNI, encodeControl } from '../../../../src/shared/tunnel/control.js';
import { encodeRecord } from '../../../../src/shared/tunnel/records.js';
import {
  TunnelSession,
  type ClientSessionOptions,
  type ServerSessionOptions,
  type TunnelSessionEvents,
  type TunnelTransport,
} from '../../../../src/shared/tunnel/session.js';
import { feedSession, tlsTransport } from '../../../../src/shared/tunnel/tls-transport.js';
import { manualTime, memoryPipe, type ManualTime } from '../../../helpers/ports.js';
import { testFrame } from '../../headend/adapters/fixtures.js';
import { createTestPki, type Identity, type TestPki } from '../../../helpers/pki.js';
import { tempDir, type TempDir } from '../../../helpers/tmp.js';
import { waitFor } from '../../../helpers/wait.js';

const KEEPALIVE_MS = 1_000;
const DEAD_AFTER_MS = 4_000;
const HELLO_TIMEOUT_MS = 2_000;
const VNI = 7;

interface Recorder {
  ups: number;
  frames: Buffer[];
  drops: string[];
  closed: string | null;
}

function recorder(): { r: Recorder; events: TunnelSessionEvents } {
  const r: Recorder = { ups: 0, frames: [], drops: [], closed: null };
  return {
    r,
    events: {
      up: () => void r.ups++,
      frames: (batch) => {
        for (const f of batch) r.frames.push(Buffer.from(f));
      },
      drop: (reason) => void r.drops.push(reason),
      closed: (reason) => void (r.closed = reason),
    },
  };
}

const clientOptions = (t: ManualTime, maxFrames = 8): ClientSessionOptions => ({
  role: 'client',
  clock: t.clock,
  scheduler: t.scheduler,
  egress: { maxFrames, holdUnsentBytes: 64 * 1024 },
  hello: { agentVersion: '1.0.0-test', site: 'site-a', capabilities: ['l2'] },
  keepaliveMs: KEEPALIVE_MS,
  deadAfterMs: DEAD_AFTER_MS,
});

const serverOptions = (t: ManualTime, maxFrames = 1_024): ServerSessionOptions => ({
  role: 'server',
  clock: t.clock,
  scheduler: t.scheduler,
  egress: { maxFrames, holdUnsentBytes: 64 * 1024 },
  helloTimeoutMs: HELLO_TIMEOUT_MS,
  ack: {
    vni: VNI,
    sessionId: 's-1',
    headendVersion: 'headend-test',
    keepaliveMs: KEEPALIVE_MS,
    deadAfterMs: DEAD_AFTER_MS,
    capabilities: [],
  },
});

interface LinkOptions {
  clientMaxFrames?: number;
  serverMaxFrames?: number;
}

/** A client and a server session joined by some transport; the server is open, the client not yet. */
interface Link {
  client: TunnelSession;
  server: TunnelSession;
  c: Recorder;
  s: Recorder;
  ct: ManualTime;
  st: ManualTime;
  clientWrites(): number;
  serverWrites(): number;
  /** Bytes as if the client (toServer) or the server (toClient) had written them. */
  toServer(bytes: Buffer): void;
  toClient(bytes: Buffer): void;
  /** The server stops reading: no pong, no frame, nothing reaches it any more. */
  silenceServer(): void;
}

type MakeLink = (t: TestContext, o?: LinkOptions) => Promise<Link>;

function sessions(o: LinkOptions, clientTransport: TunnelTransport, serverTransport: TunnelTransport) {
  const ct = manualTime(1_000, { realImmediates: true });
  const st = manualTime(50_000, { realImmediates: true });
  const c = recorder();
  const s = recorder();
  const client = new TunnelSession(clientOptions(ct, o.clientMaxFrames), clientTransport, c.events);
  const server = new TunnelSession(serverOptions(st, o.serverMaxFrames), serverTransport, s.events);
  return { client, server, c: c.r, s: s.r, ct, st };
}

const memoryLink: MakeLink = async (_t, o = {}) => {
  const pipe = memoryPipe();
  const x = sessions(o, pipe.a, pipe.b);
  pipe.attach(x.client, x.server);
  x.server.open();
  return {
    ...x,
    clientWrites: () => pipe.a.writes,
    serverWrites: () => pipe.b.writes,
    toServer: (b) => pipe.b.inject(b),
    toClient: (b) => pipe.a.inject(b),
    silenceServer: () => pipe.b.stall(),
  };
};

/** Counts the session's writes on a real transport. */
function counted(tr: TunnelTransport): TunnelTransport & { writes: number } {
  const out = {
    ...tr,
    writes: 0,
    write(chunks: readonly Buffer[]) {
      out.writes++;
      tr.write(chunks);
    },
  };
  return out;
}

let pki: { pki: TestPki; device: Identity } | undefined;
let pkiDir: TempDir | undefined;
// One PKI for the whole file, removed when the file's tests are done.
after(() => pkiDir?.remove());

const tlsLink: MakeLink = async (t, o = {}) => {
  if (!pki) {
    pkiDir = tempDir({ after: () => {} }, 'ck-contract-', true);
    const p = await createTestPki(pkiDir.dir);
    pki = { pki: p, device: await p.client('CN-CONTRACT') };
  }
  const { pki: p, device } = pki;
  const server = createTlsServer({
    key: p.server.key,
    cert: p.server.cert,
    ca: p.deviceCa.pem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ALPNProtocols: [ALPN_PROTOCOL],
  });
  const accepted = new Promise<TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    key: device.key,
    cert: device.cert,
    ca: p.dcCa.pem,
    minVersion: 'TLSv1.3',
    ALPNProtocols: [ALPN_PROTOCOL],
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const peer = await accepted;
  assert.equal(socket.getProtocol(), 'TLSv1.3');
  t.after(async () => {
    socket.destroy();
    peer.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const ctr = counted(tlsTransport(socket, { endGraceMs: 200 }));
  const str = counted(tlsTransport(peer, { endGraceMs: 200, probeUnread: true }));
  const x = sessions(o, ctr, str);
  feedSession(socket, x.client, { error: () => 'socket-error', end: 'peer-closed', close: 'peer-closed' });
  feedSession(peer, x.server, { error: () => 'socket-error', end: 'peer-closed', close: 'peer-closed' });
  x.server.open();
  return {
    ...x,
    clientWrites: () => ctr.writes,
    serverWrites: () => str.writes,
    toServer: (b) => socket.write(b),
    toClient: (b) => peer.write(b),
    silenceServer: () => peer.pause(),
  };
};

const frame = (tag: string): Buffer => testFrame('02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', tag);
const tagsOf = (frames: readonly Buffer[]): string[] => frames.map((f) => f.subarray(14).toString().replace(/\0+$/, ''));

async function up(l: Link): Promise<void> {
  l.client.open();
  await waitFor('both sessions up', 5_000, () => l.c.ups === 1 && l.s.ups === 1);
  // The client's first ping and its pong, so later write counts start from a quiet link.
  await waitFor('first RTT', 5_000, () => l.client.rttMs !== null);
}

const CASES: Record<string, (t: TestContext, make: MakeLink) => Promise<void>> = {
  'hello and hello-ack: the client learns the VNI and session from the server, the server the site': async (t, make) => {
    const l = await make(t);
    await up(l);
    assert.equal(l.client.state, 'up');
    assert.equal(l.server.state, 'up');
    assert.equal(l.client.vni, VNI);
    assert.equal(l.client.peerAck?.sessionId, 's-1');
    assert.equal(l.client.peerAck?.headendVersion, 'headend-test');
    assert.equal(l.server.peerHello?.site, 'site-a');
    assert.equal(l.server.peerHello?.agentVersion, '1.0.0-test');
    assert.deepEqual(l.c.drops, []);
    assert.deepEqual(l.s.drops, []);
  },

  'frames both ways, in order, the frames of one turn in one write': async (t, make) => {
    const l = await make(t);
    await up(l);
    const cw = l.clientWrites();
    assert.equal(l.client.sendBatch([frame('c1'), frame('c2'), frame('c3')]), 3);
    await waitFor('frames at the server', 5_000, () => l.s.frames.length === 3);
    assert.deepEqual(tagsOf(l.s.frames), ['c1', 'c2', 'c3']);
    assert.equal(l.clientWrites() - cw, 1);
    const sw = l.serverWrites();
    for (const tag of ['s1', 's2']) assert.equal(l.server.send(frame(tag)), true);
    await waitFor('frames at the client', 5_000, () => l.c.frames.length === 2);
    assert.deepEqual(tagsOf(l.c.frames), ['s1', 's2']);
    assert.equal(l.serverWrites() - sw, 1);
    assert.equal(l.client.egress.counters.sentFrames, 3);
    assert.equal(l.server.counters.framesIn, 3);
  },

  'keepalive: a ping every keepaliveMs on the client clock, RTT measured on that clock': async (t, make) => {
    const l = await make(t);
    await up(l);
    assert.equal(l.client.rttMs, 0, 'the manual clock stood still during the first round trip');
    l.ct.advance(KEEPALIVE_MS); // the tick sends the next ping...
    l.ct.skip(7); // ...and 7 ms pass on the client before the pong can arrive
    await waitFor('RTT of 7 ms', 5_000, () => l.client.rttMs === 7);
    assert.equal(l.client.state, 'up');
  },

  'dead peer: the client closes when nothing arrives for deadAfterMs': async (t, make) => {
    const l = await make(t);
    await up(l);
    l.silenceServer();
    l.ct.advance(DEAD_AFTER_MS - 1_000);
    assert.equal(l.c.closed, null, 'still alive before deadAfterMs');
    l.ct.advance(1_000);
    assert.equal(l.c.closed, 'dead-peer');
    assert.equal(l.client.state, 'closed');
  },

  'dead peer: the server closes a session that sends nothing for deadAfterMs': async (t, make) => {
    const l = await make(t);
    await up(l);
    l.st.advance(DEAD_AFTER_MS);
    assert.equal(l.s.closed, 'dead-peer');
    await waitFor('the client sees the close', 5_000, () => l.c.closed !== null);
  },

  'the server closes a connection that sends no hello within helloTimeoutMs': async (t, make) => {
    const l = await make(t);
    l.st.advance(HELLO_TIMEOUT_MS - 1);
    assert.equal(l.s.closed, null);
    l.st.advance(1);
    assert.equal(l.s.closed, 'hello-timeout');
  },

  'data before the hello is dropped; the server ignores the VNI a device sends, the client does not': async (t, make) => {
    const l = await make(t);
    l.toServer(encodeRecord(VNI, frame('early')));
    await waitFor('before-hello drop', 5_000, () => l.s.drops.includes('before-hello'));
    await up(l);
    l.toServer(encodeRecord(4242, frame('claims-4242')));
    await waitFor('frame at the server', 5_000, () => l.s.frames.length === 1);
    assert.deepEqual(tagsOf(l.s.frames), ['claims-4242']);
    l.toClient(encodeRecord(4242, frame('wrong-vni')));
    await waitFor('vni-mismatch drop', 5_000, () => l.c.drops.includes('vni-mismatch'));
    assert.equal(l.c.frames.length, 0);
  },

  "a bye ends the peer's session with its reason, after the data sent before it": async (t, make) => {
    const l = await make(t);
    await up(l);
    l.client.sendBatch([frame('last-1'), frame('last-2')]);
    l.client.close('closed by the agent', 'agent-shutdown');
    assert.equal(l.c.closed, 'closed by the agent');
    await waitFor('server closed', 5_000, () => l.s.closed !== null);
    assert.equal(l.s.closed, 'bye:agent-shutdown');
    assert.deepEqual(tagsOf(l.s.frames), ['last-1', 'last-2']);
  },

  'the server replacing a session says why; the client closes with that reason': async (t, make) => {
    const l = await make(t);
    await up(l);
    l.server.close('replaced', 'replaced');
    await waitFor('client closed', 5_000, () => l.c.closed !== null);
    assert.equal(l.c.closed, 'bye:replaced');
  },

  'an error message from the server closes the client with its code and text': async (t, make) => {
    const l = await make(t);
    l.client.open();
    l.toClient(encodeRecord(CONTROL_VNI, encodeControl({ type: 'error', code: 'refused', message: 'denylisted' })));
    await waitFor('client closed', 5_000, () => l.c.closed !== null);
    assert.equal(l.c.closed, 'headend-error:refused:denylisted');
  },

  'an oversize record closes only that session, counted': async (t, make) => {
    const l = await make(t);
    await up(l);
    l.toServer(Buffer.from([0xff, 0xff, ...Buffer.alloc(64, 0xaa)]));
    await waitFor('server closed', 5_000, () => l.s.closed !== null);
    assert.equal(l.s.closed, 'record-oversize');
    assert.ok(l.s.drops.includes('record-oversize'));
  },

  "the client's full queue drops its oldest frames; the newest leave": async (t, make) => {
    const l = await make(t, { clientMaxFrames: 4 });
    await up(l);
    const batch = Array.from({ length: 10 }, (_, i) => frame(`q${i}`));
    assert.equal(l.client.sendBatch(batch), 10);
    await waitFor('frames at the server', 5_000, () => l.s.frames.length === 4);
    assert.deepEqual(tagsOf(l.s.frames), ['q6', 'q7', 'q8', 'q9']);
    assert.equal(l.client.egress.counters.overflowDrops, 6);
  },

  "the server's full queue drops its oldest frames too; control messages still pass": async (t, make) => {
    const l = await make(t, { serverMaxFrames: 3 });
    await up(l);
    const accepted = Array.from({ length: 5 }, (_, i) => l.server.send(frame(`r${i}`)));
    assert.deepEqual(accepted, [true, true, true, true, true]);
    assert.equal(l.server.egress.counters.overflowDrops, 2);
    await waitFor('frames at the client', 5_000, () => l.c.frames.length === 3);
    assert.deepEqual(tagsOf(l.c.frames), ['r2', 'r3', 'r4']);
    const before = l.client.rttMs;
    l.ct.advance(KEEPALIVE_MS);
    l.ct.skip(3);
    await waitFor('pong after the refusals', 5_000, () => l.client.rttMs === 3);
    assert.notEqual(before, 3);
  },
};

for (const [name, make] of [
  ['in-memory pipe', memoryLink],
  ['TLS 1.3 on loopback', tlsLink],
] as const) {
  test(`tunnel contract over ${name}`, async (t) => {
    for (const [title, run] of Object.entries(CASES)) await t.test(title, (tt) => run(tt, make));
  });
}
