// SPDX-License-Identifier: UNLICENSED
// The buffers between the agent's event loop and a datagram lane (agent/adapters/datagram-lanes.ts): what
// goes in comes out whole and in order, super-frames with their header; the buffers go back to be reused;
// and CoDel drops from the queue between them only under a standing queue, never for one late buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  admit,
  BufferShuttle,
  forEachItem,
  LaneOutbox,
  LanePressure,
  laneNow,
  PAUSE_AT,
  RESUME_AT,
  type Lane,
  type LaneBuffer,
} from '../../../../src/agent/adapters/datagram-lanes.js';
import { CoDel } from '../../../../src/shared/tunnel/codel.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('frames and super-frames cross in order, byte for byte, in one buffer per task; a full buffer leaves at once', async () => {
  const sent: LaneBuffer[] = [];
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const out = new LaneOutbox(new BufferShuttle(), taken, (m) => sent.push(m));
  const frames = Array.from({ length: 5 }, (_, i) => Buffer.alloc(100 + i, i + 1));
  const hdr = Buffer.from([1, 4, 54, 0, 0x6d, 5, 34, 0, 16, 0]);
  for (const [i, f] of frames.entries()) {
    assert.ok(out.room(1 + (i === 2 ? hdr.length : 0) + 4 + f.length));
    out.batch.put(f, i === 2 ? hdr : undefined);
  }
  assert.equal(sent.length, 0, 'nothing leaves before the task ends');
  await tick();
  assert.equal(sent.length, 1, 'one buffer for the task');
  const got: { frame: Buffer; hdr: Buffer | null }[] = [];
  forEachItem((sent[0] as LaneBuffer).buf, (sent[0] as LaneBuffer).used, (frame, h) =>
    got.push({ frame: Buffer.from(frame), hdr: h && Buffer.from(h) }),
  );
  assert.deepEqual(
    got.map((g) => g.frame),
    frames,
  );
  assert.deepEqual(
    got.map((g) => g.hdr),
    [null, null, hdr, null, null],
  );
  // A 300 KB super-frame does not fit the 256 KB buffer: what was there leaves first, then it.
  Atomics.add(taken, 0, (sent[0] as LaneBuffer).used);
  out.room(5);
  out.batch.put(Buffer.alloc(1, 9));
  assert.ok(out.room(1 + 10 + 4 + 300_000));
  assert.equal(sent.length, 2, 'the small frame left before the big one');
  out.batch.put(Buffer.alloc(300_000, 7), hdr);
  await tick();
  Atomics.add(taken, 0, (sent[1] as LaneBuffer).used);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(sent.length, 3);
  const sizes: number[] = [];
  for (const m of sent.slice(1)) forEachItem(m.buf, m.used, (f) => sizes.push(f.length));
  assert.deepEqual(sizes, [1, 300_000]);
  out.close();
});

test('while the other side has not taken the last buffer, the next one keeps filling; it leaves within a millisecond or two anyway', async () => {
  const sent: LaneBuffer[] = [];
  const taken = new Int32Array(new SharedArrayBuffer(4));
  const out = new LaneOutbox(new BufferShuttle(), taken, (m) => sent.push(m));
  out.room(104);
  out.batch.put(Buffer.alloc(100));
  await tick();
  assert.equal(sent.length, 1);
  for (let i = 0; i < 3; i++) {
    out.room(104);
    out.batch.put(Buffer.alloc(100, i));
    await Promise.resolve();
  }
  assert.equal(sent.length, 1, 'the first is not taken: the next waits and fills');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sent.length, 2, 'and leaves by the timer');
  let n = 0;
  forEachItem((sent[1] as LaneBuffer).buf, (sent[1] as LaneBuffer).used, () => n++);
  assert.equal(n, 3, 'three frames in one message');
  out.close();
});

test('the cap: frames beyond MAX_WAITING bytes not yet taken are refused and counted', () => {
  const out = new LaneOutbox(new BufferShuttle(), new Int32Array(new SharedArrayBuffer(4)), () => {});
  let refused = 0;
  for (let i = 0; i < 100; i++)
    if (!out.room(65_000 + 15)) refused++;
    else out.batch.put(Buffer.alloc(65_000));
  assert.ok(refused > 30 && refused < 40, `refused ${refused} of 100 64 KB frames past 4 MB`);
  assert.equal(out.full, refused);
  out.close();
});

test('read buffers go back to the writer after their delivery and are reused', async () => {
  const a = new BufferShuttle();
  const b = new BufferShuttle();
  const first = a.get(1000);
  b.done(first.buffer as ArrayBuffer);
  assert.deepEqual(b.returns(), [], 'not before the microtasks of its delivery');
  await Promise.resolve();
  const back = b.returns();
  assert.equal(back.length, 1);
  a.give(back);
  assert.equal(a.get(1000).buffer, first.buffer, 'the same memory again');
});

test('CoDel on the queue: one late buffer is delivered whole; a standing queue loses a few frames, not all', () => {
  const frames = (n: number): { buf: ArrayBuffer; used: number } => {
    const out = new LaneOutbox(new BufferShuttle(), new Int32Array(new SharedArrayBuffer(4)), () => {});
    for (let i = 0; i < n; i++) {
      out.room(1 + 4 + 1000);
      out.batch.put(Buffer.alloc(1000));
    }
    const m = out.batch.take();
    out.close();
    return m;
  };
  const codel = new CoDel(100);
  // A GC pause: one buffer 50 ms old, then fresh ones for 300 ms. Nothing dropped.
  let delivered = 0;
  const late = { ...frames(40), at: laneNow() - 50, free: [] };
  assert.equal(
    admit(codel, 5, late, () => delivered++),
    0,
  );
  assert.equal(delivered, 40);
  let t0 = laneNow();
  let fresh = 0;
  while (laneNow() - t0 < 300) fresh += admit(codel, 5, { ...frames(10), at: laneNow(), free: [] }, () => delivered++);
  assert.equal(fresh, 0, 'a queue that drains is never dropped from');
  // A standing queue: every buffer 20 ms old for 300 ms.
  let dropped = 0;
  t0 = laneNow();
  while (laneNow() - t0 < 300) dropped += admit(codel, 5, { ...frames(10), at: laneNow() - 20, free: [] }, () => delivered++);
  assert.ok(dropped > 0, 'a standing queue above target for more than an interval is dropped from');
  assert.ok(dropped < 40, `a few frames at the control law's rate, not the queue: ${dropped}`);
});

test('backpressure: a lane past PAUSE_AT stops the TAP once; it reads again when every lane is under RESUME_AT, or at close', async () => {
  const lanes = [{ waiting: 0 }, { waiting: 0 }] as unknown as Lane[];
  const set = (i: number, w: number): void => {
    (lanes[i] as unknown as { waiting: number }).waiting = w;
  };
  const said: boolean[] = [];
  const p = new LanePressure(lanes, (full) => said.push(full));
  assert.equal(p.sent(lanes[0] as Lane, 7), 7, 'the send result passes through');
  assert.deepEqual(said, []);
  set(0, PAUSE_AT + 1);
  p.sent(lanes[0] as Lane, true);
  p.sent(lanes[0] as Lane, true);
  assert.deepEqual(said, [true], 'paused once');
  set(0, RESUME_AT - 1);
  set(1, RESUME_AT + 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(said, [true], 'not while another lane is still above RESUME_AT');
  set(1, 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(said, [true, false], 'resumed');
  set(1, PAUSE_AT + 1);
  p.sent(lanes[1] as Lane, true);
  p.release();
  p.release();
  assert.deepEqual(said, [true, false, true, false], 'released at close, once');
});
