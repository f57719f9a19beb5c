// SPDX-License-Identifier: UNLICENSED
// Storms that converge (issue 19): a real headend with tight admission pacing and many real agent tunnel
// clients at once. Every client comes up without one attempt hitting its connect timeout, the excess is
// refused before TLS (counted), and a headend that shuts down hands its fleet a retry-after window the
// agents honour: one closed in-process, and a `connector headend` process stopped by SIGTERM, whose
// exit resets connections that still hold the agents' unread keepalives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger, type Logger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { createTunnelClient, type TunnelClient } from '../../../src/agent/adapters/tunnel-client.js';
import { headendConfigDoc, registryDoc, spawnHeadend, writeJson } from './adapters/fixtures.js';
import { createTestPki, type TestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const FLEET = 40;

test('a fleet connecting at once through tight pacing converges: all up, none timed out, the excess refused before TLS', async (t) => {
  const d = tempDir(t, 'ck-he-storm-', true);
  const serials = Array.from({ length: FLEET }, (_, i) => `S-${i}`);
  const pki = await createTestPki(d.dir, { clients: serials });
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, Object.fromEntries(serials.map((s) => [s, 'acme']))));
  const doc = headendConfigDoc(d, pki) as { listen: Record<string, unknown> };
  // A rate that needs 2 s for the fleet: the excess cannot all wait in a queue of 4, however the clients'
  // hellos happen to spread (a connection is offered to the gate once its client has spoken).
  Object.assign(doc.listen, { maxHandshakes: 2, maxQueued: 4, maxWaitMs: 2_000, acceptPerS: 20, acceptBurst: 2 });
  const h = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  let headendClosed = false;
  t.after(() => (headendClosed ? undefined : h.close()));
  const port = h.tunnelAddress.port;

  const timeouts: string[] = [];
  const hints: number[] = [];
  const clients = agentFleet(pki, serials, port, hints, { keepaliveMs: 1_000, net: '127.0.1' });
  clients.forEach((c, i) =>
    c.onStateChange((state, info) => {
      if (state === 'backoff' && info.reason === 'connect-timeout') timeouts.push(serials[i] ?? '?');
    }),
  );
  t.after(() => Promise.all(clients.map((c) => c.close())));
  const t0 = Date.now();
  for (const c of clients) c.start();
  await waitFor('the whole fleet up', 30_000, () => clients.every((c) => c.state === 'up'));
  const upMs = Date.now() - t0;
  const m = h.renderMetrics();
  const paced = [...m.matchAll(/^connector_headend_refusals_total\{reason="(paced-[a-z-]+)"\} (\d+)/gm)].map(
    (x) => [x[1], Number(x[2])] as const,
  );
  const pacedTotal = paced.reduce((a, [, n]) => a + n, 0);
  t.diagnostic(`${FLEET} up in ${upMs} ms; refused before TLS: ${JSON.stringify(Object.fromEntries(paced))}`);
  assert.deepEqual(timeouts, [], 'no attempt waited until its connect timeout');
  assert.ok(pacedTotal > 0, 'the excess was refused before TLS, and counted');
  assert.doesNotMatch(m, /reason="handshake-aborted"/, 'a paced refusal is not also a failed handshake');
  assert.doesNotMatch(m, /^connector_headend_handshakes_wasted_total [1-9]/m, 'no handshake done for a client that had gone');

  // Shutdown: every session gets a bye with the window the accept rate needs (40 at 20/s: 2 s).
  headendClosed = true;
  await h.close();
  await waitFor('the hints', 5_000, () => hints.length === FLEET);
  assert.ok(
    hints.every((x) => x === 2_000),
    `hints ${hints.join(',')}`,
  );
});

/**
 * Agents of `serials` for a headend on loopback `port`, each from its own address in `net` (a /24 of
 * 127/8); the retry hints they log go to `hints`.
 */
function agentFleet(
  pki: TestPki,
  serials: string[],
  port: number,
  hints: number[],
  o: { keepaliveMs: number; net: string },
): TunnelClient[] {
  return serials.map((serial, i) => {
    const id = pki.identity(serial);
    const log = {
      ...silentLogger,
      info: (m: string, f?: Record<string, unknown>) => m === 'headend asked to retry later' && hints.push(Number(f?.['retryAfterMs'])),
    } as Logger;
    return createTunnelClient({
      headends: [new URL(`tls://127.0.0.1:${port}`)],
      getIdentity: () => Promise.resolve({ key: id.key, cert: id.cert, ca: pki.dcCa.pem }),
      hello: { agentVersion: 'test', site: serial, capabilities: [] },
      keepaliveMs: o.keepaliveMs,
      deadAfterMs: 5_000,
      backoff: { initialMs: 50, maxMs: 1_000, jitter: 1 },
      sendQueueFrames: 16,
      connectTimeoutMs: 5_000,
      localAddress: `${o.net}.${i + 1}`,
      log,
    });
  });
}

test('a headend process stopped by SIGTERM: every agent reads its bye before the reset and is given the window', async (t) => {
  const d = tempDir(t, 'ck-he-term-', true);
  const serials = Array.from({ length: FLEET }, (_, i) => `T-${i}`);
  const pki = await createTestPki(d.dir, { clients: serials });
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, Object.fromEntries(serials.map((s) => [s, 'acme']))));
  const doc = headendConfigDoc(d, pki, { metricsPort: null }) as { listen: Record<string, unknown> };
  // 40 sessions at 20 a second: a 2 s window.
  Object.assign(doc.listen, { acceptPerS: 20, acceptBurst: 20 });
  writeJson(d.path('headend.json'), doc);
  const h = await spawnHeadend(d.path('headend.json'));
  t.after(() => h.kill('SIGKILL'));
  const hints: number[] = [];
  // Keepalives every 10 ms: some arrive after the headend stopped reading, and its exit resets those
  // connections (0 to 15 of the 40 in runs here); a reset must not cost the agent the bye before it.
  const clients = agentFleet(pki, serials, h.tunnelPort, hints, { keepaliveMs: 10, net: '127.0.2' });
  t.after(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) c.start();
  await waitFor('the whole fleet up', 30_000, () => clients.every((c) => c.state === 'up'));
  await new Promise((r) => setTimeout(r, 300));
  await h.kill('SIGTERM');
  assert.equal(h.child.exitCode, 0);
  await waitFor('every agent told to retry later', 5_000, () => hints.length === FLEET).catch((e: unknown) => {
    throw new Error(`${String(e)}: ${hints.length} of ${FLEET} hints (${hints.join(',')})`);
  });
  assert.ok(
    hints.every((x) => x === 2_000),
    `hints ${hints.join(',')}`,
  );
  assert.ok(
    clients.every((c) => c.state === 'backoff' || c.state === 'connecting'),
    clients.map((c) => c.state).join(','),
  );
});
