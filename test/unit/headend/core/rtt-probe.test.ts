// SPDX-License-Identifier: UNLICENSED
// The headend's RTT probe: every session once per 5 s, a few per 20 ms tick (never a burst), one RTT sample
// per probe, RFC 3550 jitter over the samples, nothing kept (or pinged) for a session that is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RTT_SLICE_MS, RTT_SLICES, RttProbe } from '../../../../src/headend/core/rtt-probe.js';
import type { TunnelSession } from '../../../../src/shared/tunnel/session.js';

function fakeSessions(n: number): { identity: { id: string }; tunnel: TunnelSession; pings: number[] }[] {
  return Array.from({ length: n }, (_, i) => {
    const s = {
      identity: { id: `s${i}` },
      pings: [] as number[],
      tunnel: { state: 'up', rttMs: null as number | null } as unknown as TunnelSession,
    };
    (s.tunnel as unknown as { ping(now: number): void }).ping = (now: number) => s.pings.push(now);
    return s;
  });
}

test('5,000 sessions: 20 pings a tick, never a burst; every session once per five seconds', () => {
  const sessions = fakeSessions(5_000);
  const probe = new RttProbe();
  for (const s of sessions) probe.add(s);
  const perTick: number[] = [];
  for (let t = 0; t < RTT_SLICES; t++) {
    const before = sessions.reduce((a, s) => a + s.pings.length, 0);
    probe.tick(t * RTT_SLICE_MS);
    perTick.push(sessions.reduce((a, s) => a + s.pings.length, 0) - before);
  }
  assert.equal(RTT_SLICES * RTT_SLICE_MS, 5_000);
  assert.equal(Math.max(...perTick), 20);
  assert.ok(sessions.every((s) => s.pings.length === 1));
});

test('jitter is RFC 3550 over successive RTTs; null until two samples; forgotten with the session', () => {
  const [s] = fakeSessions(1);
  const probe = new RttProbe();
  probe.add(s!);
  const rtts = [10, 14, 10, 14];
  let jitter = 0;
  let prev: number | null = null;
  for (const [k, rtt] of rtts.entries()) {
    (s!.tunnel as unknown as { rttMs: number }).rttMs = rtt;
    for (let t = 0; t < RTT_SLICES; t++) probe.tick((k * RTT_SLICES + t) * RTT_SLICE_MS);
    if (prev !== null) jitter += (Math.abs(rtt - prev) - jitter) / 16;
    prev = rtt;
    assert.equal(probe.jitterOf('s0'), k === 0 ? null : Math.round(jitter * 100) / 100, `after ${k + 1} samples`);
  }
  assert.ok((probe.jitterOf('s0') ?? 0) > 0.6);
  probe.forget('s0');
  assert.equal(probe.jitterOf('s0'), null);
  const pings = s!.pings.length;
  for (let t = 0; t < RTT_SLICES; t++) probe.tick(t * RTT_SLICE_MS);
  assert.equal(s!.pings.length, pings, 'a session that is gone is not pinged');
});

test('sessions that come and go stay spread over the slices', () => {
  const sessions = fakeSessions(3_000);
  const probe = new RttProbe();
  for (const s of sessions) probe.add(s);
  // Every other one leaves, then as many new ones arrive: still at most a few per tick.
  for (const s of sessions.filter((_, i) => i % 2 === 0)) probe.forget(s.identity.id);
  const fresh = fakeSessions(1_500).map((s, i) => ({ ...s, identity: { id: `n${i}` } }));
  for (const s of fresh) probe.add(s);
  const perTick: number[] = [];
  const all = [...sessions.filter((_, i) => i % 2 === 1), ...fresh];
  for (let t = 0; t < RTT_SLICES; t++) {
    const before = all.reduce((a, s) => a + s.pings.length, 0);
    probe.tick(t * RTT_SLICE_MS);
    perTick.push(all.reduce((a, s) => a + s.pings.length, 0) - before);
  }
  assert.ok(Math.max(...perTick) <= 18, `at most ${Math.max(...perTick)} pings in a tick`);
  assert.ok(all.every((s) => s.pings.length === 1));
});
