// SPDX-License-Identifier: UNLICENSED
// The tunnel bounds kernel socket queues through the addon's setsockopt: what the kernel reads back is
// what the data path relies on for loaded latency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { tuneSocket, unreadBytesProbe } from '../../../../src/shared/native/socket-options.js';
import { loadTapAddon, type TapAddon } from '../../../../src/shared/native/addon.js';

test('sets TCP_NOTSENT_LOWAT on a connected socket and SO_RCVBUF on a listener (kernel doubles buffers)', async (t) => {
  const server = createServer((c) => c.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const l = tuneSocket(server, { rcvbuf: 64 * 1024 });
  assert.deepEqual(l, { ok: true, applied: { rcvbuf: 128 * 1024 } });

  const port = (server.address() as { port: number }).port;
  const c: Socket = connect(port, '127.0.0.1');
  t.after(() => c.destroy());
  await once(c, 'connect');
  const r = tuneSocket(c, { notsentLowat: 16 * 1024, sndbuf: 32 * 1024 });
  assert.deepEqual(r, { ok: true, applied: { sndbuf: 64 * 1024, notsentLowat: 16 * 1024 } });
});

test('never throws: no fd, no addon, and a failing call come back as reasons', async (t) => {
  assert.deepEqual(tuneSocket({}, { rcvbuf: 1024 }), { ok: false, reason: 'socket has no file descriptor' });
  assert.equal(tuneSocket({}, { rcvbuf: 1024 }, null).ok, false);
  const addon = loadTapAddon();
  const failing: TapAddon = { ...addon, setsockopt: () => { throw Object.assign(new Error('setsockopt fd 3: ENOTSOCK'), { code: 'ENOTSOCK' }); } };
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const r = tuneSocket(server, { rcvbuf: 1024 }, failing);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /ENOTSOCK/);
});

test('unreadBytesProbe reports what waits in the kernel receive queue', async (t) => {
  let peer: Socket | undefined;
  // pauseOnConnect: the handle never reads, so the bytes stay in the kernel.
  const server = createServer({ pauseOnConnect: true }, (c) => {
    peer = c;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const c = connect((server.address() as { port: number }).port, '127.0.0.1');
  t.after(() => c.destroy());
  await once(c, 'connect');
  for (let i = 0; i < 50 && !peer; i++) await sleep(10);
  assert.ok(peer);
  t.after(() => peer?.destroy());
  const probe = unreadBytesProbe(peer);
  assert.ok(probe, 'the addon has unreadBytes');
  assert.equal(probe(), 0);
  c.write(Buffer.alloc(3000));
  let n = 0;
  for (let i = 0; i < 50 && n < 3000; i++) {
    await sleep(10);
    n = probe();
  }
  assert.equal(n, 3000);
  assert.equal(unreadBytesProbe({}), undefined);
});

test('the datagram sockets probe the path themselves: the kernel reads back IP(V6)_PMTUDISC_PROBE (DF, no local fragmentation)', async (t) => {
  const { createSocket } = await import('node:dgram');
  for (const [type, host, family] of [
    ['udp4', '127.0.0.1', 'ipv4'],
    ['udp6', '::1', 'ipv6'],
  ] as const) {
    const s = createSocket(type);
    t.after(() => s.close());
    await new Promise<void>((r) => s.bind(0, host, () => r()));
    assert.deepEqual(tuneSocket(s, { pmtuProbe: family }), { ok: true, applied: { pmtuProbe: 3 } }, type);
  }
});
