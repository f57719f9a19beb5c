// SPDX-License-Identifier: UNLICENSED
// When the tunnel listener spends TLS work (issue 19, storms): a connection is offered a handshake slot
// only once its client has spoken, so a silent one never holds a slot and is refused at the handshake
// timeout; a completed handshake's admission runs when the listener's `defer` lets it, and a client that
// left meanwhile, or a listener that began to close meanwhile, gets no admission at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { silentLogger } from '../../../src/shared/log.js';
import { openTlsListener, type TlsListener, type TlsListenerOptions } from '../../../src/headend/adapters/tls-listener.js';
import { connectDevice, createTestPki, type TestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

interface Seen {
  peers: string[];
  refused: string[];
  handshakes: number;
}

async function listener(pki: TestPki, seen: Seen, o: Partial<TlsListenerOptions> = {}): Promise<TlsListener> {
  return openTlsListener({
    host: '127.0.0.1',
    port: 0,
    key: pki.server.key,
    cert: pki.server.cert,
    deviceCa: pki.deviceCa.pem,
    handshakeTimeoutMs: 1_500,
    log: silentLogger,
    onHandshake: () => seen.handshakes++,
    onRefused: (r) => seen.refused.push(r),
    onPeer: (socket, peer) => {
      seen.peers.push(peer.serial);
      socket.end();
    },
    ...o,
  });
}

test('a connection that says nothing holds no handshake slot: a device behind it is served at once, the silent one refused at the timeout', async (t) => {
  const d = tempDir(t, 'ck-he-hsstart-', true);
  const pki = await createTestPki(d.dir, { clients: ['D-1'] });
  const seen: Seen = { peers: [], refused: [], handshakes: 0 };
  // One slot: before, the silent connection took it and the device waited out its handshake timeout.
  const l = await listener(pki, seen, { pacing: { maxHandshakes: 1, maxQueued: 8, maxWaitMs: 5_000, acceptPerS: 1_000, acceptBurst: 10 } });
  t.after(() => l.close(0));
  const silent: Socket = netConnect(l.address.port, '127.0.0.1');
  silent.on('error', () => {});
  let silentClosedAt = 0;
  silent.on('close', () => (silentClosedAt = Date.now()));
  await new Promise((r) => silent.once('connect', r));
  await new Promise((r) => setTimeout(r, 100));

  const dev = connectDevice(pki, l.address.port, 'D-1');
  t.after(() => dev.destroy());
  await waitFor('the device admitted', 5_000, () => seen.peers.length === 1);
  assert.equal(silentClosedAt, 0, 'the device was admitted while the silent connection still waited');
  assert.deepEqual(seen.refused, []);

  await waitFor('the silent connection closed by the headend', 5_000, () => silentClosedAt > 0);
  assert.deepEqual(seen.refused, ['client-hello-timeout']);
  assert.equal(seen.handshakes, 1, 'no TLS work for the silent connection');
});

test('a completed handshake is admitted when the deferral runs it; not for a client that left, nor once the listener closes', async (t) => {
  const d = tempDir(t, 'ck-he-hsdefer-', true);
  const pki = await createTestPki(d.dir, { clients: ['D-1', 'D-2', 'D-3'] });
  const seen: Seen = { peers: [], refused: [], handshakes: 0 };
  const deferred: (() => void)[] = [];
  const l = await listener(pki, seen, { defer: (fn) => deferred.push(fn) });
  let closed = false;
  t.after(() => (closed ? undefined : l.close(0)));
  const runDeferred = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };

  // Admitted, but only when the deferred work runs.
  const a = connectDevice(pki, l.address.port, 'D-1');
  t.after(() => a.destroy());
  await waitFor('the first handshake', 5_000, () => seen.handshakes === 1 && deferred.length === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen.peers, [], 'nothing admitted in the handshake turn');
  runDeferred();
  assert.deepEqual(seen.peers, ['D-1']);

  // Gone before its turn: no admission, counted as gone.
  const b = connectDevice(pki, l.address.port, 'D-2');
  await waitFor('the second handshake', 5_000, () => seen.handshakes === 2 && deferred.length === 1);
  const bClosed = new Promise((r) => b.once('close', r));
  b.destroy();
  await bClosed;
  await new Promise((r) => setTimeout(r, 100));
  runDeferred();
  assert.deepEqual(seen.peers, ['D-1']);
  assert.deepEqual(seen.refused, ['gone']);

  // Its turn comes after the listener began to close: closed, not admitted.
  const c = connectDevice(pki, l.address.port, 'D-3');
  t.after(() => c.destroy());
  await waitFor('the third handshake', 5_000, () => seen.handshakes === 3 && deferred.length === 1);
  let cClosed = false;
  c.on('close', () => (cClosed = true));
  closed = true;
  const closing = l.close(5_000);
  runDeferred();
  await closing;
  await waitFor('the third client closed', 5_000, () => cClosed);
  assert.deepEqual(seen.peers, ['D-1']);
});

test('admitting counts the connections in a handshake and those waiting for a slot, and falls to 0 once they are gone', async (t) => {
  const d = tempDir(t, 'ck-he-hsadmitting-', true);
  const pki = await createTestPki(d.dir, { clients: ['D-1'] });
  const seen: Seen = { peers: [], refused: [], handshakes: 0 };
  const l = await listener(pki, seen, {
    handshakeTimeoutMs: 10_000,
    pacing: { maxHandshakes: 1, maxQueued: 8, maxWaitMs: 10_000, acceptPerS: 1_000, acceptBurst: 10 },
  });
  t.after(() => l.close(0));
  assert.equal(l.admitting, 0);
  // A TLS record header that announces a ClientHello and never sends it: the first holds the one slot
  // in its handshake, the other two wait for it.
  const stuck: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = netConnect(l.address.port, '127.0.0.1');
    s.on('error', () => {});
    t.after(() => s.destroy());
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    stuck.push(s);
  }
  await waitFor('three connections admitting', 5_000, () => l.admitting === 3);
  assert.equal(seen.handshakes, 0);

  for (const s of stuck) s.destroy();
  await waitFor('none admitting once the clients left', 5_000, () => l.admitting === 0);

  const dev = connectDevice(pki, l.address.port, 'D-1');
  t.after(() => dev.destroy());
  await waitFor('the device admitted', 5_000, () => seen.peers.length === 1);
  assert.equal(l.admitting, 0, 'an admitted session is no longer admitting');
});
