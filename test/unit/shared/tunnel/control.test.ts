// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CONTROL_VNI, decodeControl, encodeControl, isControlFrame, type ControlMessage } from '../../../../src/shared/tunnel/control.js';
import { RecordDecoder, encodeRecord } from '../../../../src/shared/tunnel/records.js';

const samples: ControlMessage[] = [
  { type: 'hello', agentVersion: '1.2.3', site: 'acme-hq', capabilities: ['l2', 'arp-proxy'] },
  { type: 'hello-ack', vni: 100, sessionId: 'abcd', headendVersion: '0.1.0', keepaliveMs: 5000, deadAfterMs: 15000, capabilities: [] },
  { type: 'ping', nonce: 7, t: 1234.5 },
  { type: 'pong', nonce: 0xffffffff, t: 0 },
  { type: 'bye', reason: 'agent-shutdown' },
  { type: 'error', code: 'refused', message: 'denylisted' },
  { type: 'dg-state', tx: 'datagram', reason: 'probe-answered' },
];

test('every message round-trips through a record, and is recognised as control', () => {
  for (const msg of samples) {
    const got: ControlMessage[] = [];
    const dec = new RecordDecoder(
      (vni, frame) => {
        assert.ok(isControlFrame(vni, frame));
        const d = decodeControl(frame);
        assert.ok(d.ok, JSON.stringify(d));
        if (d.ok) got.push(d.msg);
      },
      () => assert.fail('drop'),
    );
    dec.push(encodeRecord(CONTROL_VNI, encodeControl(msg)));
    assert.deepEqual(got, [msg]);
  }
});

test('a data frame with EtherType 0x88B5 on a data VNI is not control', () => {
  assert.equal(isControlFrame(100, encodeControl(samples[0] as ControlMessage)), false);
});

test('zero padding after the body (60-byte minimum frames) is accepted', () => {
  const f = encodeControl({ type: 'bye', reason: 'x' });
  const padded = Buffer.concat([f, Buffer.alloc(60 - f.length)]);
  assert.deepEqual(decodeControl(padded), { ok: true, msg: { type: 'bye', reason: 'x' } });
});

test('bad messages are drops with a reason, never exceptions', () => {
  const good = encodeControl({ type: 'ping', nonce: 1, t: 2 });
  const v2 = Buffer.from(good);
  v2[14] = 2;
  assert.equal((decodeControl(v2) as { drop: string }).drop, 'control-version');
  const badType = Buffer.from(good);
  badType[15] = 99;
  assert.equal((decodeControl(badType) as { drop: string }).drop, 'control-type');
  const badLen = Buffer.from(good);
  badLen.writeUInt16BE(5000, 16);
  assert.equal((decodeControl(badLen) as { drop: string }).drop, 'control-length');
  const ack = encodeControl({
    type: 'hello-ack',
    vni: 100,
    sessionId: 's',
    headendVersion: 'v',
    keepaliveMs: 1,
    deadAfterMs: 2,
    capabilities: [],
  });
  const zeroVni = Buffer.from(ack.toString('latin1').replace('"vni":100', '"vni":  0'), 'latin1');
  assert.equal((decodeControl(zeroVni) as { drop: string }).drop, 'control-field');
  for (let i = 0; i < 2000; i++) {
    const f = Buffer.concat([good.subarray(0, 14), randomBytes(i % 80)]);
    const d = decodeControl(f);
    assert.equal(typeof d.ok, 'boolean');
  }
});

test('retryAfterMs in a bye or error is optional both ways: an old peer neither sends nor needs it', () => {
  for (const m of [
    { type: 'bye', reason: 'headend-shutdown', retryAfterMs: 5_000 },
    { type: 'error', code: 'refused', message: 'busy', retryAfterMs: 250 },
  ] as const) {
    assert.deepEqual(decodeControl(encodeControl(m)), { ok: true, msg: m });
  }
  // What an old headend sends: no field, and none appears.
  assert.deepEqual(decodeControl(encodeControl({ type: 'bye', reason: 'x' })), { ok: true, msg: { type: 'bye', reason: 'x' } });
  // A bad value is ignored, not a drop: the bye itself still counts.
  for (const bad of [-1, 1.5, 'soon', 600_001]) {
    const frame = encodeControl({ type: 'bye', reason: 'x', retryAfterMs: bad as number });
    assert.deepEqual(decodeControl(frame), { ok: true, msg: { type: 'bye', reason: 'x' } }, String(bad));
  }
});

test('dg-state: a transport other than datagram or tls is a field drop; an older decoder would count type 7 and carry on', () => {
  const frame = encodeControl({ type: 'dg-state', tx: 'tls', reason: 'dark' });
  const bad = Buffer.from(frame.toString('latin1').replace('"tls"', '"udp"'), 'latin1');
  const d = decodeControl(bad);
  assert.equal(d.ok, false);
  assert.equal(!d.ok && d.drop, 'control-field');
  const unknown = Buffer.from(frame);
  unknown[15] = 99;
  assert.equal(!decodeControl(unknown).ok && (decodeControl(unknown) as { drop: string }).drop, 'control-type');
});
