// SPDX-License-Identifier: UNLICENSED
// The session on a version-2 stream (docs/tunnel-protocol.md): the grammar is fixed at open() by ALPN,
// control travels as CONTROL records, `offload` is chosen only when both ends want it on v2, and a
// super-frame crosses whole as one OFFLOAD record, in order with the frames around it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEthernet } from '../../../../src/shared/l2/ethernet.js';
import { parseOffload } from '../../../../src/shared/l2/tso-segment.js';
import { REC_CONTROL, REC_FRAME, REC_OFFLOAD, encodeOffloadV2 } from '../../../../src/shared/tunnel/records-v2.js';
import { TunnelSession, type TunnelSessionEvents } from '../../../../src/shared/tunnel/session.js';
import { manualTime, memoryPipe } from '../../../helpers/ports.js';
import { waitFor } from '../../../helpers/wait.js';

interface Seen {
  log: string[];
  drops: string[];
  ups: number;
}

function events(): { seen: Seen; ev: TunnelSessionEvents & { offload: NonNullable<TunnelSessionEvents['offload']> } } {
  const seen: Seen = { log: [], drops: [], ups: 0 };
  return {
    seen,
    ev: {
      up: () => void seen.ups++,
      frames: (b) => {
        for (const f of b) seen.log.push(`frame:${f.length}`);
      },
      offload: (h, f) => void seen.log.push(`offload:${h.toString('hex')}:${f.length}`),
      drop: (r) => void seen.drops.push(r),
      closed: () => {},
    },
  };
}

/** An Ethernet frame of `len` bytes (a super-frame past 1514: the session does not parse what it carries). */
function frame(len: number): Buffer {
  const f = Buffer.alloc(len, 7);
  encodeEthernet({ src: 0x02_00_00_00_00_01, dst: 0x02_00_00_00_00_02, etherType: 0x0800, payload: Buffer.alloc(46) }).copy(f, 0, 0, 14);
  return f;
}
/** NEEDS_CSUM, TCPV4, hdr_len 54, gso_size 1448, csum_start 34, csum_offset 16 (little endian). */
const VNET = Buffer.from('01013600a805220010 00'.replace(' ', ''), 'hex');

function pair(o: { version: 1 | 2; clientOffload: boolean; serverOffload: boolean }) {
  const pipe = memoryPipe();
  const time = manualTime(0, { realImmediates: true });
  const c = events();
  const s = events();
  const wire: number[] = [];
  const a = pipe.a;
  const write = a.write.bind(a);
  // What the client writes, by record type (v2) or as v1 records: the first byte of each write.
  a.write = (chunks) => {
    for (const ch of chunks) wire.push(ch[0] ?? -1);
    write(chunks);
  };
  const egress = { maxFrames: 64, holdUnsentBytes: 64 * 1024 };
  const client = new TunnelSession(
    {
      role: 'client',
      clock: time.clock,
      scheduler: time.scheduler,
      egress,
      hello: { agentVersion: 't', site: 's', capabilities: ['l2'] },
      keepaliveMs: 1_000,
      deadAfterMs: 4_000,
      offload: o.clientOffload,
    },
    pipe.a,
    c.ev,
  );
  const server = new TunnelSession(
    {
      role: 'server',
      clock: time.clock,
      scheduler: time.scheduler,
      egress,
      helloTimeoutMs: 2_000,
      ack: { vni: 9, sessionId: 'x', headendVersion: 'h', keepaliveMs: 1_000, deadAfterMs: 4_000, capabilities: [] },
      offload: o.serverOffload,
    },
    pipe.b,
    s.ev,
  );
  pipe.attach(client, server);
  server.open(o.version);
  client.open(o.version);
  return { client, server, c: c.seen, s: s.seen, wire, pipe };
}

test('v2: hello and hello-ack are CONTROL records; offload is chosen only when both ends want it', async () => {
  for (const [clientOffload, serverOffload, want] of [
    [true, true, true],
    [true, false, false],
    [false, true, false],
  ] as const) {
    const p = pair({ version: 2, clientOffload, serverOffload });
    await waitFor('up', 2_000, () => p.client.state === 'up' && p.server.state === 'up');
    assert.equal(p.wire[0], REC_CONTROL, 'the hello is a v2 CONTROL record');
    assert.equal(p.client.offload, want);
    assert.equal(p.server.offload, want);
    assert.equal(p.client.peerAck?.capabilities.includes('offload'), want);
    assert.equal(p.server.peerHello?.capabilities.includes('offload'), clientOffload);
    p.client.close('done');
  }
});

test('v1: no v2 capability is offered, nothing is negotiated, OFFLOAD cannot be sent', async () => {
  const p = pair({ version: 1, clientOffload: true, serverOffload: true });
  await waitFor('up', 2_000, () => p.client.state === 'up');
  assert.deepEqual(p.server.peerHello?.capabilities, ['l2']);
  assert.equal(p.client.offload, false);
  assert.equal(p.client.sendOffload(VNET, frame(3_000)), false);
  assert.ok(p.client.send(frame(100)));
  await waitFor('the frame', 2_000, () => p.s.log.length === 1);
  assert.deepEqual(p.s.log, ['frame:100']);
  assert.notEqual(p.wire[0], REC_CONTROL, 'v1 framing: a u16 length first');
});

test('v2 with offload: a 64 KB super-frame crosses whole as one OFFLOAD record, in order with frames', async () => {
  const p = pair({ version: 2, clientOffload: true, serverOffload: true });
  await waitFor('up', 2_000, () => p.client.state === 'up' && p.server.offload);
  const big = frame(65_540);
  assert.ok(p.client.send(frame(100)));
  assert.ok(p.client.sendOffload(VNET, big));
  assert.ok(p.client.send(frame(200)));
  await waitFor('all three', 2_000, () => p.s.log.length === 3);
  assert.deepEqual(p.s.log, ['frame:100', `offload:${VNET.toString('hex')}:65540`, 'frame:200']);
  assert.ok(p.wire.includes(REC_OFFLOAD), 'an OFFLOAD record on the wire');
  assert.ok(p.wire.includes(REC_FRAME) || p.wire.includes(REC_CONTROL));
  assert.equal(p.server.counters.bytesIn, 100 + 65_540 + 200);
  assert.equal(p.client.egress.counters.sentBytes, 100 + 65_540 + 200);
  // And the other way.
  assert.ok(p.server.sendOffload(VNET, big));
  await waitFor('at the client', 2_000, () => p.c.log.length === 1);
  assert.deepEqual(p.c.log, [`offload:${VNET.toString('hex')}:65540`]);
});

test('v2 without offload: an OFFLOAD record from the peer is dropped and counted, the stream goes on', async () => {
  const p = pair({ version: 2, clientOffload: false, serverOffload: false });
  await waitFor('up', 2_000, () => p.client.state === 'up' && p.server.state === 'up');
  assert.equal(p.client.sendOffload(VNET, frame(3_000)), false);
  p.pipe.b.inject(encodeOffloadV2(9, VNET, frame(3_000)));
  assert.ok(p.client.send(frame(100)));
  await waitFor('the frame after it', 2_000, () => p.s.log.length === 1);
  assert.deepEqual(p.s.drops, ['offload-unexpected']);
  assert.equal(p.server.state, 'up');
});

test('on datagrams a super-frame goes to the channel that cuts it, never as an OFFLOAD record racing the datagrams; without such a channel the caller segments it', async () => {
  const p = pair({ version: 2, clientOffload: true, serverOffload: true });
  await waitFor('up', 2_000, () => p.client.state === 'up' && p.client.offload);
  const big = frame(4_000);
  const parsed = parseOffload(VNET, tcpSuperFrame(4_000 - 54));
  assert.ok(typeof parsed !== 'string', String(parsed));
  const cut: number[] = [];
  p.client.datagramTx = () => true;
  assert.equal(p.client.offload, false, 'no OFFLOAD records while data is on datagrams');
  assert.equal(p.client.takesSuperFrames, false, 'a channel that cannot cut them: the TAP segments');
  assert.equal(p.client.sendOffload(VNET, big, parsed), false);
  p.client.datagramTxOffload = (o) => (cut.push(o.segments), o.segments);
  assert.equal(p.client.takesSuperFrames, true);
  assert.equal(p.client.sendOffload(VNET, big, parsed), true);
  assert.equal(p.client.sendOffload(VNET, big), false, 'not without the validated header to cut by');
  assert.deepEqual(cut, [3]);
  assert.equal(p.client.counters.datagramFramesOut, 3);
  assert.equal(p.client.counters.datagramBytesOut, 4_000 + 2 * 54, 'counted as the frames it became');
  p.client.datagramTxOffload = () => 0;
  assert.equal(p.client.sendOffload(VNET, big, parsed), false, 'a channel that refuses it leaves it to the caller');
  // Back on TLS: OFFLOAD records again.
  p.client.datagramTx = null;
  p.client.datagramTxOffload = null;
  assert.equal(p.client.takesSuperFrames, true);
  assert.ok(p.client.sendOffload(VNET, big));
  await waitFor('the OFFLOAD record', 2_000, () => p.s.log.length === 1);
  assert.deepEqual(p.s.log, [`offload:${VNET.toString('hex')}:4000`]);
});

/** An IPv4 TCP super-frame with `payload` bytes after 54 bytes of headers, as VNET describes it. */
function tcpSuperFrame(payload: number): Buffer {
  const f = Buffer.alloc(54 + payload);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40 + payload, 16);
  f[23] = 6;
  f[46] = 5 << 4;
  return f;
}
