// SPDX-License-Identifier: UNLICENSED
// The WAN delay line (native/wan/wan.c, our stand-in for netem) between two namespaces: the RTT a ping
// sees is the profile's, loss is drawn as asked, and the stats account for every frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { addVeth, ipIn, nsExec } from '../../src/lab/adapters/netns.js';
import { prepareWanNs, startWan } from '../../src/lab/adapters/wan.js';
import { parseWanSpec } from '../../src/lab/core/wan.js';
import { isRoot, netnsScope } from '../helpers/netns.js';
import { skipUnlessCi } from '../helpers/skip.js';
import { tempDir } from '../helpers/tmp.js';

const skip = skipUnlessCi(isRoot() ? false : 'needs root (namespaces, AF_PACKET)');

async function wire(t: Parameters<typeof netnsScope>[0]): Promise<{ a: string; w: string; b: string }> {
  const s = netnsScope(t, 'ckw');
  const a = await s.ns('a');
  const w = await s.ns('w');
  const b = await s.ns('b');
  await prepareWanNs(w);
  await addVeth({ ns: a, ifname: 'eth0' }, { ns: w, ifname: 'wa' });
  await addVeth({ ns: b, ifname: 'eth0' }, { ns: w, ifname: 'wb' });
  await ipIn(a, 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
  await ipIn(b, 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0');
  for (const [ns, dev] of [
    [a, 'eth0'],
    [b, 'eth0'],
    [w, 'wa'],
    [w, 'wb'],
  ] as const)
    await ipIn(ns, 'link', 'set', dev, 'up');
  return { a, w, b };
}

function rtts(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

test('the delay line adds the profile RTT (12 ms ±1 ms) and forwards every frame', { skip, timeout: 60_000 }, async (t) => {
  const { a, w } = await wire(t);
  const dir = tempDir(t).dir;
  const line = await startWan(w, 'wa', 'wb', parseWanSpec('12ms,1ms,1g,0'), {
    statsPath: join(dir, 'wan.json'),
    logFile: join(dir, 'wan.log'),
  });
  t.after(() => line.stop());
  const r = await nsExec(a, 'ping', ['-c', '20', '-i', '0.05', '-W', '1', '198.18.0.2'], { allowFailure: true });
  const ms = rtts(r.stdout);
  assert.equal(ms.length, 20, `every ping answered: ${r.stdout}`);
  const min = Math.min(...ms);
  const avg = ms.reduce((x, y) => x + y, 0) / ms.length;
  t.diagnostic(`RTT min ${min.toFixed(2)} ms, avg ${avg.toFixed(2)} ms, max ${Math.max(...ms).toFixed(2)} ms`);
  // Jitter is ±0.5 ms per direction and a FIFO: no RTT below 11 ms; a loaded box may add a little on top.
  assert.ok(min >= 11, `RTT never below the profile's 12 ms - 1 ms (min ${min})`);
  assert.ok(min < 18 && avg < 30, `RTT near 12 ms, not twice it (min ${min}, avg ${avg})`);
  const s = await line.stats();
  assert.ok(s.a2b.tx_packets >= 20 && s.b2a.tx_packets >= 20, 'both directions forwarded');
  assert.equal(s.a2b.drops.loss + s.b2a.drops.loss, 0);
  const fin = await line.stop();
  assert.ok(fin && fin.cpu_user_s + fin.cpu_sys_s >= 0, 'final stats at exit');
});

test('loss is drawn per frame, per direction, as asked', { skip, timeout: 60_000 }, async (t) => {
  const { a, w } = await wire(t);
  const dir = tempDir(t).dir;
  const line = await startWan(w, 'wa', 'wb', parseWanSpec('2ms,0,1g,20%'), {
    statsPath: join(dir, 'wan.json'),
    logFile: join(dir, 'wan.log'),
    seed: 7,
  });
  t.after(() => line.stop());
  await nsExec(a, 'ping', ['-c', '200', '-i', '0.01', '-W', '1', '198.18.0.2'], { allowFailure: true });
  const s = await line.stats();
  const lost = s.a2b.drops.loss;
  t.diagnostic(`a2b lost ${lost} of ${s.a2b.rx_segments}; b2a lost ${s.b2a.drops.loss} of ${s.b2a.rx_segments}`);
  // 200 frames at p = 0.2: 40 expected, and below 15 or above 70 has a probability far under 1e-6.
  assert.ok(lost > 15 && lost < 70, `about 20 % lost a->b (${lost})`);
  assert.ok(s.b2a.drops.loss > 0, 'the return direction loses too');
});
