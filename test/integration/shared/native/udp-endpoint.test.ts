// SPDX-License-Identifier: UNLICENSED
// The datagram channel's socket, both kinds (the addon's batched one and node's dgram, which older builds
// and CONNECTOR_DATAGRAM_SOCKET=dgram use), on loopback: every datagram arrives whole, in order, from the
// right address, whether the kernel carried it alone or in a GSO/GRO train; a bind conflict is a clear
// error; an ICMP error or an empty datagram is counted or skipped, never fatal. The addon's socket runs
// each test twice: sending from the event loop, and from its send thread ('native-thread'), which must
// keep the socket's order and count every datagram it could not send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, openUdpEndpoint, type UdpEndpoint, type UdpEndpointOptions } from '../../../../src/shared/native/udp-endpoint.js';
import { waitFor } from '../../../helpers/wait.js';

type Got = { d: Buffer; address: string; port: number };
type Kind = 'native' | 'native-thread' | 'dgram';

async function endpoint(kind: Kind, o: Partial<UdpEndpointOptions> & { got?: Got[] }): Promise<UdpEndpoint> {
  const got = o.got ?? [];
  const ep = await openUdpEndpoint(
    {
      host: '127.0.0.1',
      port: 0,
      what: 'test',
      rcvbuf: 4 << 20,
      sndbuf: 4 << 20,
      pmtuProbe: true,
      onDatagram: (d, address, port) => got.push({ d: Buffer.from(d), address, port }),
      onError: () => undefined,
      ...(kind === 'native-thread' ? { sendThread: true } : {}),
      ...o,
    },
    { CONNECTOR_DATAGRAM_SOCKET: kind === 'dgram' ? 'dgram' : '' },
  );
  assert.equal(ep.kind, kind === 'dgram' ? 'dgram' : 'native');
  assert.equal(ep.stats().sendThread, kind === 'native-thread');
  return ep;
}

/** Names of this process's threads (the send thread calls itself ck-udp-tx). */
function threadNames(): string[] {
  return readdirSync('/proc/self/task').map((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
}
const sendThreads = (): number => threadNames().filter((n) => n === 'ck-udp-tx').length;

/** Distinct contents: datagram i is filled with i and its first two bytes carry i. */
function datagram(i: number, size: number): Buffer {
  const d = Buffer.alloc(size, i & 255);
  if (size >= 2) d.writeUInt16BE(i, 0);
  return d;
}

for (const kind of ['native', 'native-thread', 'dgram'] as const) {
  test(`${kind}: a burst of equal and odd sizes from a connected socket arrives whole, in order, from its source`, async (t) => {
    const got: Got[] = [];
    let batches = 0;
    const rx = await endpoint(kind, { got, onBatchEnd: () => batches++ });
    t.after(() => rx.close());
    const tx = await endpoint(kind, { connect: { host: '127.0.0.1', port: rx.port } });
    t.after(() => tx.close());
    // One task's sends: 40 of 1,400 (one GSO run), a 600 (ends the run), then more of 1,400 and a 1-byte one.
    const sizes = [...Array<number>(40).fill(1_400), 600, ...Array<number>(70).fill(1_400), 1, 9_000];
    sizes.forEach((s, i) => tx.send(datagram(i, s)));
    await waitFor('all datagrams', 5_000, () => got.length >= sizes.length);
    assert.deepEqual(
      got.map((g) => g.d.length),
      sizes,
    );
    got.forEach((g, i) => assert.ok(g.d.equals(datagram(i, sizes[i] ?? 0)), `datagram ${i} intact`));
    assert.ok(got.every((g) => g.address === '127.0.0.1' && g.port === tx.port));
    assert.ok(batches >= 1);
    if (kind !== 'dgram') {
      assert.ok(batches < sizes.length / 4, `read in batches (${batches} for ${sizes.length})`);
      assert.equal(tx.stats().dropped, 0);
      assert.equal(tx.stats().gso, true);
    }
  });

  test(`${kind}: datagrams written into alloc() memory arrive intact, within one task, past the arena, and in the next task`, async (t) => {
    const got: Got[] = [];
    const rx = await endpoint(kind, { got });
    t.after(() => rx.close());
    const tx = await endpoint(kind, { connect: { host: '127.0.0.1', port: rx.port } });
    t.after(() => tx.close());
    const put = (i: number, size: number): void => {
      const d = tx.alloc(size);
      datagram(i, size).copy(d);
      tx.send(d);
    };
    // 900 of 1,400 bytes is more than the 1 MiB arena: the rest come from ordinary Buffers.
    for (let i = 0; i < 900; i++) put(i, 1_400);
    await new Promise((r) => setImmediate(r));
    for (let i = 900; i < 1_000; i++) put(i, 333 + i);
    await waitFor('all 1,000', 5_000, () => got.length >= 1_000);
    got.forEach((g, i) => assert.ok(g.d.equals(datagram(i, i < 900 ? 1_400 : 333 + i)), `datagram ${i} intact`));
  });

  test(`${kind}: one socket sends to two peers in the same task, each gets only its own`, async (t) => {
    const a: Got[] = [];
    const b: Got[] = [];
    const pa = await endpoint(kind, { got: a });
    const pb = await endpoint(kind, { got: b });
    const hub = await endpoint(kind, {});
    t.after(async () => {
      await pa.close();
      await pb.close();
      await hub.close();
    });
    for (let i = 0; i < 30; i++) {
      hub.send(datagram(i, 1_000), '127.0.0.1', pa.port);
      hub.send(datagram(100 + i, 1_000), '127.0.0.1', pb.port);
    }
    await waitFor('both peers', 5_000, () => a.length >= 30 && b.length >= 30);
    assert.deepEqual(
      a.map((g) => g.d.readUInt16BE(0)),
      [...Array(30).keys()],
    );
    assert.deepEqual(
      b.map((g) => g.d.readUInt16BE(0)),
      [...Array(30).keys()].map((i) => 100 + i),
    );
  });

  test(`${kind}: a port in use is a CK_ERR_IO naming the address and what the socket is for`, async (t) => {
    const first = await endpoint(kind, {});
    t.after(() => first.close());
    await assert.rejects(endpoint(kind, { port: first.port, what: 'datagram (datagram.port)' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CK_ERR_IO');
      assert.match(e.message, new RegExp(`cannot bind the datagram \\(datagram.port\\) socket to 127.0.0.1:${first.port}: .*EADDRINUSE`));
      return true;
    });
  });
}

for (const kind of ['native', 'native-thread'] as const)
test(`${kind}: a refused port (ICMP) and an empty datagram are counted or skipped; the socket keeps working`, async (t) => {
  const got: Got[] = [];
  const rx = await endpoint(kind, { got });
  const gone = await endpoint(kind, {});
  const gonePort = gone.port;
  await gone.close();
  const tx = await endpoint(kind, { connect: { host: '127.0.0.1', port: gonePort } });
  t.after(async () => {
    await rx.close();
    await tx.close();
  });
  tx.send(datagram(1, 100));
  await sleep(50);
  tx.send(datagram(2, 100));
  await waitFor('the refusal counted', 2_000, () => tx.stats().recvErrors + tx.stats().sendErrors > 0);
  assert.match(tx.stats().lastError, /ECONNREFUSED/);
  // An empty datagram (node's dgram can send one) is nobody's: skipped, and the next one arrives.
  const raw = createSocket('udp4');
  raw.bind(0, '127.0.0.1');
  await once(raw, 'listening');
  t.after(() => raw.close());
  raw.send(Buffer.alloc(0), rx.port, '127.0.0.1');
  raw.send(datagram(3, 10), rx.port, '127.0.0.1');
  await waitFor('the datagram after the empty one', 2_000, () => got.length >= 1);
  await sleep(50);
  assert.deepEqual(
    got.map((g) => g.d.length),
    [10],
  );
});

test('native: a destination of the other address family is an error to onError and a counted drop, never a throw', async (t) => {
  const errors: Error[] = [];
  const ep = await endpoint('native', { onError: (e) => errors.push(e) });
  t.after(() => ep.close());
  ep.send(datagram(1, 100), '::1', 9);
  ep.send(datagram(2, 100), '::1', 9);
  await sleep(20);
  ep.send(datagram(3, 100), '::1', 9);
  await sleep(20);
  assert.equal(errors.length, 1, 'said once, not per task');
  assert.match(errors[0]?.message ?? '', /IP literal/);
  assert.equal(ep.stats().dropped, 3);
});

for (const kind of ['native', 'native-thread'] as const)
test(`${kind}: IPv6 on ::1, sources formatted as node formats them`, async (t) => {
  const got: Got[] = [];
  const rx = await endpoint(kind, { host: '::1', got });
  const tx = await endpoint(kind, { host: '::1', connect: { host: '::1', port: rx.port } });
  t.after(async () => {
    await rx.close();
    await tx.close();
  });
  tx.send(datagram(7, 1_300));
  await waitFor('the IPv6 datagram', 2_000, () => got.length === 1);
  assert.equal(got[0]?.address, '::1');
  assert.equal(got[0]?.port, tx.port);
});

test('native: datagrams from three source addresses in one read batch are each attributed to their own', async (t) => {
  const got: Got[] = [];
  const rx = await endpoint('native', { got });
  t.after(() => rx.close());
  const senders = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.2'].map((host) => endpoint('native', { host })));
  t.after(() => Promise.all(senders.map((x) => x.close())));
  // Interleaved, so consecutive records of one batch change source: a, b, c, a, b, c ...
  for (let i = 0; i < 60; i++) senders[i % 3]?.send(datagram(i, 100), '127.0.0.1', rx.port);
  await waitFor('all 60', 5_000, () => got.length >= 60);
  for (const g of got) {
    const i = g.d.readUInt16BE(0);
    const from = senders[i % 3];
    assert.equal(`${g.address}:${g.port}`, `${['127.0.0.2', '127.0.0.3', '127.0.0.2'][i % 3]}:${from?.port}`, `datagram ${i}'s source`);
  }
});

test('native-thread: 300 tasks of sends to two peers leave from the thread, each peer gets its own in order', async (t) => {
  const a: Got[] = [];
  const b: Got[] = [];
  const pa = await endpoint('native', { got: a });
  const pb = await endpoint('native', { got: b });
  const before = sendThreads();
  const hub = await endpoint('native-thread', {});
  t.after(async () => {
    await pa.close();
    await pb.close();
    await hub.close();
  });
  // The thread names itself as it starts.
  await waitFor('a thread of its own, named ck-udp-tx', 2_000, () => sendThreads() === before + 1);
  // Paced so loopback's receive buffers never overflow: what is asserted is order, not the kernel's room.
  let ia = 0;
  let ib = 0;
  for (let task = 0; task < 300; task++) {
    for (let k = 0; k < 20; k++) {
      hub.send(datagram(ia++, 200 + ((task * 7 + k) % 1_200)), '127.0.0.1', pa.port);
      if (k % 3 === 0) hub.send(datagram(ib++, 1_400), '127.0.0.1', pb.port);
    }
    await new Promise((r) => setImmediate(r));
    if (task % 20 === 19) await waitFor('the peers to keep up', 5_000, () => a.length >= ia - 200 && b.length >= ib - 200);
  }
  await waitFor('every datagram', 10_000, () => a.length >= ia && b.length >= ib);
  assert.equal(hub.stats().dropped, 0);
  assert.deepEqual(
    a.map((g) => g.d.readUInt16BE(0)),
    [...Array(ia).keys()].map((i) => i & 0xffff),
    "peer A's datagrams in the order sent",
  );
  assert.deepEqual(
    b.map((g) => g.d.readUInt16BE(0)),
    [...Array(ib).keys()],
    "peer B's datagrams in the order sent",
  );
  await hub.close();
  assert.equal(sendThreads(), before, 'the thread is gone with its socket');
});

test('native-thread: closing with datagrams still queued neither hangs nor loses count: each arrived or is counted dropped', async (t) => {
  const got: Got[] = [];
  const rx = await endpoint('native', { got, rcvbuf: 16 << 20 });
  t.after(() => rx.close());
  for (let round = 0; round < 5; round++) {
    const tx = await endpoint('native-thread', { connect: { host: '127.0.0.1', port: rx.port } });
    const start = got.length;
    const n = 1_000;
    for (let i = 0; i < n; i++) tx.send(datagram(i, 1_000));
    // The task's sends reach the thread in a microtask; the close comes right behind them.
    await Promise.resolve();
    await tx.close();
    const st = tx.stats();
    await sleep(100);
    const arrived = got.length - start;
    assert.equal(arrived + st.dropped, n, `round ${round}: ${arrived} arrived + ${st.dropped} counted dropped`);
  }
});

test('formatAddress writes IPv4, IPv6 and IPv4-mapped addresses as inet_ntop does', () => {
  const v6 = (s: string): Buffer => {
    const b = Buffer.alloc(16);
    const [head = '', tail = ''] = s.split('::');
    const h = head ? head.split(':') : [];
    const tl = tail ? tail.split(':') : [];
    const words = [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
    words.forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), 2 * i));
    return b;
  };
  for (const a of ['::1', 'fe80::1', '2001:db8::8:800:200c:417a', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', '1::', '::']) {
    assert.equal(formatAddress(v6(a), 0, true), a);
  }
  const mapped = Buffer.alloc(16);
  mapped.writeUInt16BE(0xffff, 10);
  Buffer.from([192, 0, 2, 9]).copy(mapped, 12);
  assert.equal(formatAddress(mapped, 0, true), '::ffff:192.0.2.9');
  assert.equal(formatAddress(Buffer.from([10, 1, 2, 3, 0, 0]), 0, false), '10.1.2.3');
});
