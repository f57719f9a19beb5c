// SPDX-License-Identifier: UNLICENSED
// Fuzz: random and mutated datagrams through a live session's receive path (datagram/channel.ts). No
// exception may escape, nothing but the untouched original may open, a mutated copy never moves the
// path's state, and the session keeps opening its real traffic afterwards.
// Re-run a failure with CK_FUZZ_SEED=<seed printed>; CK_FUZZ_DATAGRAMS scales the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DatagramChannel } from '../../src/shared/tunnel/datagram/channel.js';
import { prng, randBytes, randInt, seedFromEnv } from '../helpers/prng.js';

const N = Number(process.env['CK_FUZZ_DATAGRAMS'] ?? 100_000);

test(`${N} random and mutated datagrams: dropped by reason, never a throw, never authentic`, (t) => {
  const seed = seedFromEnv('CK_FUZZ_SEED');
  t.diagnostic(`seed ${seed}`);
  const rnd = prng(seed);
  const block = randomBytes(256);
  const agent = new DatagramChannel(
    { role: 'agent', cipher: 'AES-256-GCM', peerId: 77, keyBlock: Buffer.from(block), peerSplits: true },
    0,
  );
  const headend = new DatagramChannel({ role: 'headend', cipher: 'AES-256-GCM', peerId: 77, keyBlock: Buffer.from(block) }, 0);
  const frame = Buffer.alloc(60, 1);
  // Small frames whole, full-size ones as HEAD/TAIL pairs (above the 1,280-byte starting path MTU).
  const samples: Buffer[] = [];
  for (let i = 0; i < 16; i++) agent.sealFrame(frame, i, (d) => samples.push(d));
  for (let i = 0; i < 8; i++) agent.sealFrame(Buffer.alloc(1514, i), 20 + i, (d) => samples.push(d));
  const reasons = new Set(['not-data-v2', 'peer', 'key-id', 'epoch', 'zero', 'too-old', 'replay', 'auth', 'kind', 'frame-short']);
  let opened = 0;
  for (let i = 0; i < N; i++) {
    const base = samples[randInt(rnd, 0, samples.length - 1)]!;
    let d: Buffer;
    switch (i % 4) {
      case 0:
        d = randBytes(rnd, randInt(rnd, 0, 1600));
        break;
      case 1:
        d = base.subarray(0, randInt(rnd, 0, base.length - 1)); // truncated
        break;
      default: {
        d = Buffer.from(base);
        for (let k = randInt(rnd, 1, 4); k > 0; k--) d[randInt(rnd, 0, d.length - 1)]! ^= randInt(rnd, 1, 255);
      }
    }
    const r = headend.receive(d, 1_000);
    if (r.kind === 'drop') assert.ok(reasons.has(r.reason), `unknown reason ${r.reason} (seed ${seed}, #${i})`);
    else opened++;
  }
  // A mutation that left every byte as it was is the original: the only thing that may ever open, once.
  assert.ok(opened <= samples.length, `${opened} opened (seed ${seed})`);
  assert.equal(headend.tx, 'tls', 'no mutated datagram moved the path');
  const fresh: Buffer[] = [];
  agent.sealFrame(frame, 2_000, (d) => fresh.push(d));
  assert.equal(headend.receive(fresh[0]!, 2_000).kind, 'frame', 'real traffic still opens afterwards');
  const pair: Buffer[] = [];
  agent.sealFrame(Buffer.alloc(1514, 9), 2_001, (d) => pair.push(d));
  assert.equal(headend.receive(pair[0]!, 2_001).kind, 'half');
  const whole = headend.receive(pair[1]!, 2_001);
  assert.ok(whole.kind === 'frame' && whole.frame.equals(Buffer.alloc(1514, 9)), 'and a split frame is rebuilt');
});
