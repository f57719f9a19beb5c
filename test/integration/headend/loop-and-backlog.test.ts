// SPDX-License-Identifier: UNLICENSED
// Issue 19's plumbing: the tunnel listener's accept queue is the configured backlog (4,096 by default,
// as the kernel reports it), and the event-loop health watch raises its alarm when the loop stalls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { silentLogger, type Logger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { watchLoopHealth } from '../../../src/headend/adapters/loop-health.js';
import { headendConfigDoc, rawTunnel, registryDoc, writeJson } from './adapters/fixtures.js';
import { connect as netConnect, type Socket } from 'node:net';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

test('the tunnel listener accepts with the configured backlog (default 4096, capped by somaxconn)', async (t) => {
  const d = tempDir(t, 'ck-he-backlog-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, {}));
  const doc = headendConfigDoc(d, pki);
  const config = parseHeadendConfig(doc, d.dir);
  assert.equal(config.listen.backlog, 4_096);
  const h = await startHeadend(config, { log: silentLogger, registryPollMs: 0 });
  t.after(() => h.close());
  const ss = spawnSync('ss', ['-ltnH', `sport = :${h.tunnelAddress.port}`], { encoding: 'utf8' });
  const sendQ = Number(ss.stdout.trim().split(/\s+/)[2]);
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  t.diagnostic(`ss reports backlog ${sendQ}; net.core.somaxconn ${somaxconn}`);
  assert.equal(sendQ, Math.min(4_096, somaxconn));
});

test('a stalled event loop raises the delay alarm and publishes p99 and max; it clears when calm', async (t) => {
  const published: { p99Ms: number; maxMs: number; alarm: boolean }[] = [];
  const lines: string[] = [];
  const log = { ...silentLogger, warn: (m: string) => lines.push(m), info: (m: string) => lines.push(m) } as Logger;
  const w = watchLoopHealth({
    windowMs: 200,
    alarmP99Ms: 50,
    log,
    publish: (p99Ms, maxMs, alarm) => published.push({ p99Ms, maxMs, alarm }),
  });
  t.after(() => w.stop());
  await new Promise((r) => setTimeout(r, 250));
  const until = Date.now() + 300;
  while (Date.now() < until) {
    // a control-plane job that holds the loop for 300 ms
  }
  await waitFor('the alarm', 3_000, () => published.some((p) => p.alarm));
  const worst = Math.max(...published.map((p) => p.maxMs));
  t.diagnostic(`max loop delay seen: ${worst.toFixed(0)} ms`);
  assert.ok(worst >= 250);
  assert.ok(lines.includes('alarm raised: event loop delayed'));
  await waitFor('the alarm cleared', 3_000, () => lines.includes('alarm cleared: event loop delay back to normal'));
});

test('the tunnel listener closes connections past its per-source cap before any TLS work; others are served', async (t) => {
  const d = tempDir(t, 'ck-he-cap-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const doc = headendConfigDoc(d, pki) as { listen: Record<string, unknown> };
  doc.listen['maxPerSource'] = 5;
  const h = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  t.after(() => h.close());
  const port = h.tunnelAddress.port;
  const flood: Socket[] = [];
  let closed = 0;
  for (let i = 0; i < 20; i++) {
    const s = netConnect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.on('close', () => closed++);
    flood.push(s);
  }
  t.after(() => flood.forEach((s) => s.destroy()));
  await waitFor('the excess closed', 3_000, () => closed >= 15);
  const c = await rawTunnel(port, await pki.client('A-1'), pki.dcCa.pem, '127.0.0.1', '127.0.0.2');
  t.after(() => c.socket.destroy());
  const ack = await c.hello();
  assert.equal(ack.type, 'hello-ack', 'a device from another address is admitted');
  t.diagnostic(`20 connections from one address with maxPerSource 5: ${closed} closed at once`);
});
