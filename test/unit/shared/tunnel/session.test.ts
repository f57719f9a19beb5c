// SPDX-License-Identifier: UNLICENSED
// The tunnel session core against a recording transport on a manual clock: no sockets, no real timers.
// What both ends do over a real connection is in test/integration/shared/tunnel/contract.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_VNI, decodeControl, encodeControl, isControlFrame, type ControlMessage } from '../../../../src/shared/tunnel/control.js';
import { encodeRecord, RecordDecoder } from '../../../../src/shared/tunnel/records.js';
import { TunnelSession, type TunnelTransport } from '../../../../src/shared/tunnel/session.js';
import { encodeEthernet } from '../../../../src/shared/l2/ethernet.js';
import { manualTime } from '../../../helpers/ports.js';

interface Recording extends TunnelTransport {
  /** Every write: the records it carried, control messages by type, data frames as 'data:<first payload byte>'. */
  writes: string[][];
  unsent: number;
  unread: number;
  ended: boolean;
  destroyed: boolean;
}

function recording(): Recording {
  const t: Recording = {
    writes: [],
    unsent: 0,
    unread: 0,
    ended: false,
    destroyed: false,
    write(chunks) {
      const seen: string[] = [];
      const d = new RecordDecoder(
        (vni, f) => {
          if (isControlFrame(vni, f)) {
            const c = decodeControl(f);
            seen.push(c.ok ? c.msg.type : 'bad-control');
          } else seen.push(`data:${f[14]}`);
        },
        () => seen.push('bad-record'),
      );
      for (const c of chunks) d.push(c);
      t.writes.push(seen);
    },
    unsentBytes: () => t.unsent,
    unreadBytes: () => t.unread,
    end() {
      t.ended = true;
    },
    destroy() {
      t.destroyed = true;
    },
  };
  return t;
}

const frame = (tag: number): Buffer =>
  encodeEthernet({ src: 0x02_00_00_00_00_01, dst: 0xff_ff_ff_ff_ff_ff, etherType: 0x88b6, payload: Buffer.alloc(46, tag) });
const control = (msg: ControlMessage): Buffer => encodeRecord(CONTROL_VNI, encodeControl(msg));
const ACK = { vni: 5, sessionId: 's', headendVersion: 'h', keepaliveMs: 600, deadAfterMs: 4_000, capabilities: [] };

function client(o: { keepaliveMs?: number; maxFrames?: number; holdUnsentBytes?: number } = {}) {
  const time = manualTime(0);
  const tr = recording();
  const ev = { frames: [] as number[], drops: [] as string[], closed: null as string | null, ups: 0, log: [] as string[] };
  const s = new TunnelSession(
    {
      role: 'client',
      clock: time.clock,
      scheduler: time.scheduler,
      egress: { maxFrames: o.maxFrames ?? 16, holdUnsentBytes: o.holdUnsentBytes ?? 64 * 1024 },
      hello: { agentVersion: 'a', site: 'x', capabilities: [] },
      keepaliveMs: o.keepaliveMs ?? 1_000,
      deadAfterMs: 4_000,
    },
    tr,
    {
      up: () => void ev.ups++,
      frames: (b) => {
        for (const f of b) ev.frames.push(f[14] ?? -1);
        ev.log.push(`frames:${b.map((f) => f[14]).join(',')}`);
      },
      drop: (r) => void ev.drops.push(r),
      closed: (r) => {
        ev.closed = r;
        ev.log.push(`closed:${r}`);
      },
    },
  );
  return { s, tr, time, ev };
}

function upClient(o: Parameters<typeof client>[0] = {}) {
  const c = client(o);
  c.s.open();
  c.s.receive(control({ type: 'hello-ack', ...ACK }));
  c.time.runImmediates();
  c.tr.writes.length = 0;
  return c;
}

test('the hello leaves on open, and the first ping as soon as the hello-ack arrives', () => {
  const { s, tr, time, ev } = client();
  s.open();
  assert.deepEqual(tr.writes, [], 'nothing before the end of the turn');
  time.runImmediates();
  assert.deepEqual(tr.writes, [['hello']]);
  s.receive(control({ type: 'hello-ack', ...ACK }));
  time.runImmediates();
  assert.equal(ev.ups, 1);
  assert.equal(s.vni, 5);
  assert.deepEqual(tr.writes[1], ['ping']);
});

test("the client pings at the smaller of its and the headend's keepalive", () => {
  const { tr, time } = upClient({ keepaliveMs: 1_000 });
  time.advance(600);
  assert.deepEqual(tr.writes, [['ping']], "the headend's 600 ms wins over 1000 ms");
});

test('control records lead the turn, then the data, in one write', () => {
  const { s, tr, time } = upClient();
  s.sendBatch([frame(1), frame(2)]);
  s.receive(control({ type: 'ping', nonce: 9, t: 0 }));
  time.runImmediates();
  assert.deepEqual(tr.writes, [['pong', 'data:1', 'data:2']]);
});

test('frames wait while the socket holds the bound, and leave on drain', () => {
  const { s, tr, time } = upClient({ holdUnsentBytes: 10_000 });
  tr.unsent = 10_000;
  s.sendBatch([frame(1), frame(2)]);
  time.runImmediates();
  assert.deepEqual(tr.writes, []);
  assert.equal(s.egress.length, 2);
  tr.unsent = 0;
  s.drain();
  assert.deepEqual(tr.writes, [['data:1', 'data:2']]);
});

test('frames of one read reach the handler before a bye that follows them', () => {
  const { s, ev } = upClient();
  s.receive(Buffer.concat([encodeRecord(5, frame(7)), encodeRecord(5, frame(8)), control({ type: 'bye', reason: 'replaced' })]));
  assert.deepEqual(ev.log, ['frames:7,8', 'closed:bye:replaced']);
});

test('a server drops received frames only under a standing kernel backlog (receive-side CoDel), never for a spike', () => {
  const time = manualTime(1);
  const tr = recording();
  const got: number[] = [];
  const drops: string[] = [];
  const s = new TunnelSession(
    {
      role: 'server',
      clock: time.clock,
      scheduler: time.scheduler,
      egress: { maxFrames: 64, holdUnsentBytes: 64 * 1024 },
      rxAqm: { targetBytes: 1_000, intervalMs: 100 },
      helloTimeoutMs: 1_000,
      ack: ACK,
    },
    tr,
    { up: () => {}, frames: (b) => b.forEach((f) => got.push(f[14] ?? -1)), drop: (r) => void drops.push(r), closed: () => {} },
  );
  s.open();
  s.receive(control({ type: 'hello', agentVersion: 'a', site: 'x', capabilities: [] }));
  // A spike (a late loop turn): a big backlog for one read, then gone. Nothing is dropped.
  tr.unread = 50_000;
  s.receive(encodeRecord(5, frame(1)));
  tr.unread = 0;
  time.advance(10);
  s.receive(encodeRecord(5, frame(2)));
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(drops, []);
  // A standing backlog: above target on every read for longer than an interval. Then drops begin.
  tr.unread = 5_000;
  for (let i = 0; i < 30; i++) {
    s.receive(encodeRecord(5, frame(10 + i)));
    time.advance(10);
  }
  assert.ok(drops.length > 0 && drops.every((r) => r === 'rx-aqm'), `drops: ${drops.join(',')}`);
  assert.equal(s.counters.rxAqmDrops, drops.length);
  assert.ok(got.includes(10) && got.includes(19), 'nothing dropped during the first interval');
  assert.ok(drops.length < 10, 'CoDel drops a few, not everything');
});

test('nothing is sent before the hello exchange or after close; close destroys or ends', () => {
  const c = client();
  assert.equal(c.s.send(frame(1)), false);
  assert.equal(c.s.sendBatch([frame(1)]), 0);
  c.s.close('connect-timeout');
  assert.equal(c.tr.destroyed, true);
  assert.equal(c.ev.closed, 'connect-timeout');
  assert.equal(c.time.pending(), 0, 'no timer left behind');
  const u = upClient();
  u.s.close('closed by the agent', 'agent-shutdown');
  assert.equal(u.tr.ended, true);
  assert.deepEqual(u.tr.writes.at(-1), ['bye']);
  assert.equal(u.s.send(frame(1)), false);
  assert.equal(u.time.pending(), 0);
  // The process exits next: the bye is written and the connection left for the exit to close.
  const x = upClient();
  x.s.close('headend-shutdown', 'headend-shutdown', 5_000, true);
  assert.deepEqual(x.tr.writes.at(-1), ['bye']);
  assert.equal(x.tr.ended, false);
  assert.equal(x.tr.destroyed, false);
  assert.equal(x.ev.closed, 'headend-shutdown');
  assert.equal(x.time.pending(), 0);
});
