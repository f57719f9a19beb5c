// SPDX-License-Identifier: UNLICENSED
// Connection-level attacks on the two services that face the internet, on loopback, against the real
// servers: the headend's tunnel listener and the EST server. Thousands of half-open connections spread
// over many source addresses (127.0.0.0/8), failed handshakes, slow headers. During each attack a
// legitimate client is served within 2 s; the attackers are cut off by the handshake timeout; the
// refusals are logged at a bounded rate; memory stays bounded and a repeated attack does not add to it.
// Figures as `#` lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { EST_PATH_PREFIX } from '../../src/shared/est/protocol.js';
import { headendConfigDoc, rawTunnel, registryDoc, spawnHeadend, writeJson } from '../integration/headend/adapters/fixtures.js';
import { createEstFixture } from '../integration/enroll/est-fixture.js';
import { createTestPki } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const mb = (n: number): string => (n / 1024 / 1024).toFixed(0);

/** `perSource` idle TCP connections from each of `sources` loopback addresses; counts those the server closes. */
async function halfOpen(port: number, sources: number, perSource: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  for (let s = 0; s < sources; s++) {
    for (let i = 0; i < perSource; i++) {
      const c = netConnect({ host: '127.0.0.1', port, localAddress: `127.0.1.${10 + s}` });
      c.on('error', () => {});
      c.on('close', () => closed++);
      sockets.push(c);
    }
    await sleep(5); // a few hundred connects at a time: the attack, not the test's own loop, is measured
  }
  return { sockets, closed: () => closed };
}

async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await sleep(200);
  }
  return process.memoryUsage().rss;
}

/** Resident memory of another process (kB in /proc, returned in bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Resolves once every socket has connected or closed (bounded). */
async function allConnected(sockets: readonly Socket[], timeoutMs: number): Promise<void> {
  await waitFor('the attack connections established', timeoutMs, () => sockets.every((s) => !s.connecting), 50);
}

test('headend tunnel listener: 2,000 half-open connections and 300 failed handshakes; a device is admitted in < 2 s; bounded logs; memory back', async (t) => {
  const d = tempDir(t, 'ck-abuse-he-', true);
  const pki = await createTestPki(d.dir);
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const doc = headendConfigDoc(d, pki) as { session?: Record<string, unknown> };
  doc.session = { ...(doc.session ?? {}), helloTimeoutMs: 2_000 };
  writeJson(d.path('headend.json'), doc);
  // Its own process, as in production: the attack's sockets must not share its loop or count in its RSS.
  const h = await spawnHeadend(d.path('headend.json'));
  t.after(() => h.kill());
  const port = h.tunnelPort;
  const pid = h.child.pid ?? 0;
  const baseline = rssOf(pid);

  const flood = await halfOpen(port, 20, 100);
  t.after(() => flood.sockets.forEach((s) => s.destroy()));
  const device = await pki.client('A-1');
  await allConnected(flood.sockets, 10_000);
  const t0 = Date.now();
  const c = await rawTunnel(port, device, pki.dcCa.pem, '127.0.0.1', '127.0.0.2');
  t.after(() => c.socket.destroy());
  assert.equal((await c.hello()).type, 'hello-ack');
  const admitted = Date.now() - t0;
  const during = rssOf(pid);
  assert.ok(admitted < 2_000, `a device admitted during the flood in ${admitted} ms`);

  // Failed handshakes: a client certificate from no CA the headend trusts, and plain garbage.
  const refusedLines = (): number => h.lines.filter((l) => l['msg'] === 'refused: TLS handshake').length;
  const before = refusedLines();
  const rogue = await createTestPki(d.path('rogue'));
  const rogueId = await rogue.client('A-1');
  const fails: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    fails.push(
      new Promise<void>((resolve) => {
        const s =
          i % 2 === 0
            ? tlsConnect({
                host: '127.0.0.1',
                port,
                key: rogueId.key,
                cert: rogueId.cert,
                rejectUnauthorized: false,
                ALPNProtocols: ['connector-l2/1'],
              })
            : netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }, () => s.write(Buffer.alloc(600, 0x16)));
        s.on('error', () => {});
        s.on('close', () => resolve());
        setTimeout(() => s.destroy(), 5_000).unref();
      }),
    );
  }
  await Promise.all(fails);
  await sleep(300); // the last lines on their way through the pipe
  const logged = refusedLines() - before;
  t.diagnostic(`300 failed handshakes: ${logged} log lines (was one each: 24,501 lines in one attack)`);
  // 5 lines per refusal reason per 10 s window (then a count): a few reasons, at most two windows here.
  assert.ok(logged > 0 && logged <= 40, `failed handshakes logged at a bounded rate (${logged} lines for 300)`);

  // The half-open connections are cut off by the handshake timeout, not held until the client leaves.
  await waitFor('the half-open connections closed by the server', 10_000, () => flood.closed() >= 1_900, 100);
  const cut = Date.now() - t0;
  flood.sockets.forEach((s) => s.destroy());
  await sleep(1_000);
  const after = rssOf(pid);
  // The allocator keeps what the first attack freed for reuse: a second one must not add to it.
  const again = await halfOpen(port, 20, 100);
  t.after(() => again.sockets.forEach((s) => s.destroy()));
  await waitFor('the second attack cut off', 15_000, () => again.closed() >= 1_900, 100);
  again.sockets.forEach((s) => s.destroy());
  await sleep(1_000);
  const afterTwo = rssOf(pid);
  t.diagnostic(
    `2,000 half-open from 20 addresses: device admitted in ${admitted} ms; all cut off by the server after ${cut} ms (timeout 2 s); headend RSS ${mb(baseline)} MB idle, ${mb(during)} MB during, ${mb(after)} MB after, ${mb(afterTwo)} MB after a second attack`,
  );
  assert.ok(after - baseline < 64 * 1024 * 1024, `memory bounded after the attack (+${mb(after - baseline)} MB)`);
  // Native memory the allocator keeps moves by a few MB from run to run; what matters is that attacks do
  // not add up: two stay within the bound of one.
  assert.ok(afterTwo - baseline < 64 * 1024 * 1024, `a second attack reuses that memory (+${mb(afterTwo - baseline)} MB after two)`);
  assert.equal((await c.hello()).type, 'hello-ack', 'the device session survived the attack');
});

test('EST server: 1,000 half-open connections and slow headers; cacerts served in < 2 s; both cut off by timeouts; memory back', async (t) => {
  const est = await createEstFixture({ metrics: true });
  t.after(() => est.close());
  const port = est.server.port;
  const ca = est.anchorPem;
  const cacerts = (): Promise<{ status: number; ms: number }> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const req = request(
        {
          host: '127.0.0.1',
          localAddress: '127.0.0.2',
          servername: 'localhost',
          port,
          path: `${EST_PATH_PREFIX}/cacerts`,
          ca,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0 }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  const baseline = await settledRss();
  const t0 = Date.now();
  const flood = await halfOpen(port, 20, 50);
  t.after(() => flood.sockets.forEach((s) => s.destroy()));

  // Slow headers: a TLS client that sends its request line and then one header byte a second.
  let slowReply = '';
  let slowClosedAt = 0;
  const slow = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port, ca }, () => {
    slow.write(`GET ${EST_PATH_PREFIX}/cacerts HTTP/1.1\r\nHost: x\r\n`);
  });
  const drip = setInterval(() => slow.writable && slow.write('X'), 1_000);
  slow.on('data', (b: Buffer) => (slowReply += b.toString('latin1')));
  slow.on('error', () => {});
  slow.on('close', () => {
    slowClosedAt = Date.now() - t0;
    clearInterval(drip);
  });
  t.after(() => {
    clearInterval(drip);
    slow.destroy();
  });

  const legit = await cacerts();
  assert.equal(legit.status, 200);
  assert.ok(legit.ms < 2_000, `cacerts during the flood in ${legit.ms} ms`);
  await waitFor('half-open connections cut off by the handshake timeout', 15_000, () => flood.closed() >= 950, 100);
  const cut = Date.now() - t0;
  await waitFor('slow headers cut off', 15_000, () => slowClosedAt > 0, 100);
  flood.sockets.forEach((s) => s.destroy());
  const after = await settledRss();
  t.diagnostic(
    `1,000 half-open from 20 addresses: cacerts in ${legit.ms} ms, all cut off after ${cut} ms (was held 120 s); slow headers: ${/^HTTP\/1\.1 (\d+)/.exec(slowReply)?.[1] ?? 'closed'} after ${slowClosedAt} ms (was 408 after 78 s); RSS ${mb(baseline)} -> ${mb(after)} MB`,
  );
  assert.ok(cut < 13_000, 'the 10 s handshake timeout cut them off');
  assert.ok(slowClosedAt < 13_000, `slow headers cut off by the 10 s headers timeout (${slowClosedAt} ms)`);
  assert.ok(after - baseline < 64 * 1024 * 1024, `memory back near the baseline (+${mb(after - baseline)} MB)`);
  assert.equal((await cacerts()).status, 200, 'still serving');

  // Every refusal is in the metrics (on their own listener): the handshake timeouts and the 408.
  const metrics = await (await fetch(`http://127.0.0.1:${est.server.metricsPort ?? 0}/metrics`)).text();
  const refused = (reason: string): number =>
    Number(new RegExp(`connector_service_refusals_total\\{service="est",reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
  t.diagnostic(`EST metrics after the attack: tls-failure ${refused('tls-failure')}, bad-request ${refused('bad-request')}`);
  assert.ok(refused('tls-failure') >= 950, 'the half-open connections are counted as TLS failures');
  assert.ok(refused('bad-request') >= 1, 'the slow-headers 408 is counted');
});
