// SPDX-License-Identifier: UNLICENSED
// The tunnel listener's close when the headend process exits next (SIGTERM, issue 19): every session's
// bye reaches the kernel before it resolves, and nothing more is read, so thousands of peers answering
// their byes do not hold the exit back. A peer that stopped reading holds it only for the grace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { silentLogger } from '../../../src/shared/log.js';
import { openTlsListener, type TlsListener } from '../../../src/headend/adapters/tls-listener.js';
import { connectDevice, createTestPki, type TestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const DEVICES = 12;

interface Side {
  listener: TlsListener;
  /** The headend's end of each admitted connection, and how many of them closed. */
  server: TLSSocket[];
  serverCloses: number;
}

async function openSide(pki: TestPki): Promise<Side> {
  const side: Side = { listener: undefined as unknown as TlsListener, server: [], serverCloses: 0 };
  side.listener = await openTlsListener({
    host: '127.0.0.1',
    port: 0,
    key: pki.server.key,
    cert: pki.server.cert,
    deviceCa: pki.deviceCa.pem,
    handshakeTimeoutMs: 5_000,
    log: silentLogger,
    onRefused: () => {},
    onPeer: (socket) => {
      side.server.push(socket);
      socket.on('data', () => {});
      socket.on('close', () => side.serverCloses++);
    },
  });
  return side;
}

/** A device that closes its side when it reads the bye, as the agent does. */
function device(pki: TestPki, port: number, cn: string): { socket: TLSSocket; bye: () => boolean } {
  let got = '';
  const socket = connectDevice(pki, port, cn);
  socket.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    if (got.endsWith('bye')) socket.end();
  });
  return { socket, bye: () => got.endsWith('bye') };
}

test('an exiting close: every bye reaches the peers, the peers answering are not read, and the grace is not waited', async (t) => {
  const d = tempDir(t, 'ck-he-lexit-', true);
  const clients = Array.from({ length: DEVICES }, (_, i) => `D-${i + 1}`);
  const pki = await createTestPki(d.dir, { clients });
  const side = await openSide(pki);
  const devices = clients.map((cn) => device(pki, side.listener.address.port, cn));
  t.after(() => {
    for (const s of side.server) s.destroy();
    for (const dv of devices) dv.socket.destroy();
  });
  await waitFor('every device admitted', 10_000, () => side.server.length === DEVICES);

  // As Headend.close({ exiting }) leaves them: a bye written, the connection neither ended nor destroyed.
  for (const s of side.server) s.write('bye');
  const t0 = Date.now();
  await side.listener.close(20_000, true);
  const ms = Date.now() - t0;

  assert.ok(ms < 10_000, `resolved once the byes had left, not after the 20 s grace (${ms} ms)`);
  assert.equal(side.server.filter((s) => s.writableLength === 0).length, DEVICES, 'each bye handed to the kernel');
  await waitFor('every device read its bye and closed its side', 10_000, () =>
    devices.every((dv) => dv.bye() && dv.socket.writableFinished),
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(side.serverCloses, 0, "the peers' answers are left unread for the exit to close");
});

test('an exiting close waits no longer than the grace for a peer that stopped reading', async (t) => {
  const d = tempDir(t, 'ck-he-lexit2-', true);
  const pki = await createTestPki(d.dir, { clients: ['D-1'] });
  const side = await openSide(pki);
  const deaf = device(pki, side.listener.address.port, 'D-1');
  t.after(() => {
    for (const s of side.server) s.destroy();
    deaf.socket.destroy();
  });
  await waitFor('the device admitted', 10_000, () => side.server.length === 1);
  deaf.socket.pause();
  const [s] = side.server;
  assert.ok(s);
  // More than both ends' socket buffers hold: the bye cannot reach the kernel while the peer does not read.
  s.write(Buffer.alloc(32 * 1024 * 1024));
  s.write('bye');
  const t0 = Date.now();
  await side.listener.close(400, true);
  const ms = Date.now() - t0;
  assert.ok(s.writableLength > 0, 'the bye is still queued');
  assert.ok(ms >= 350 && ms < 5_000, `resolved at the grace (${ms} ms)`);
});
