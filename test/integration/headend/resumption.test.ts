// SPDX-License-Identifier: UNLICENSED
// TLS 1.3 resumption across headend restarts (issue 19): headends sharing `tls.ticketKeysFile` resume the
// agent's ticket after a restart, accept a ticket of the previous key after a rotation, and still refuse a
// device the registry revoked, resumed or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { silentLogger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend, type Headend } from '../../../src/headend/main.js';
import { createTunnelClient } from '../../../src/agent/adapters/tunnel-client.js';
import { headendConfigDoc, registryDoc, writeJson } from './adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const key = (): string => randomBytes(48).toString('hex');
const count = (h: Headend, re: RegExp): number => Number(re.exec(h.renderMetrics())?.[1] ?? 0);
const RESUMED = /^connector_headend_handshakes_total\{resumed="yes"\} (\d+)/m;

test('a ticket survives a headend restart and a key rotation; a revoked device is refused even when it resumes', async (t) => {
  const d = tempDir(t, 'ck-he-resume-', true);
  const pki = await createTestPki(d.dir, { clients: ['A-1'] });
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': 'acme' }));
  const k1 = key();
  writeFileSync(d.path('tickets.keys'), `# current first\n${k1}\n`);
  const doc = headendConfigDoc(d, pki) as { listen: Record<string, unknown>; tls: Record<string, unknown> };
  doc.tls['ticketKeys'] = d.path('tickets.keys');
  let h = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  doc.listen['port'] = h.tunnelAddress.port;
  const restart = async (): Promise<void> => {
    await h.close();
    h = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  };
  t.after(() => h.close());

  const id = pki.identity('A-1');
  const reasons: string[] = [];
  const c = createTunnelClient({
    headends: [new URL(`tls://127.0.0.1:${h.tunnelAddress.port}`)],
    getIdentity: () => Promise.resolve({ key: id.key, cert: id.cert, ca: pki.dcCa.pem }),
    hello: { agentVersion: 'test', site: 'a', capabilities: [] },
    keepaliveMs: 1_000,
    deadAfterMs: 5_000,
    backoff: { initialMs: 50, maxMs: 500, jitter: 1 },
    sendQueueFrames: 16,
    random: () => 0.1,
    log: silentLogger,
  });
  c.onStateChange((s, info) => s === 'backoff' && reasons.push(info.reason ?? ''));
  t.after(() => c.close());
  c.start();
  await waitFor('up, full handshake', 10_000, () => c.status().state === 'up');
  assert.equal(c.status().tlsResumed, false);
  // The ticket arrives just after the handshake.
  await new Promise((r) => setTimeout(r, 300));

  await restart();
  await waitFor('up again after the restart', 10_000, () => c.status().state === 'up' && c.status().sessionId !== null);
  assert.equal(c.status().tlsResumed, true, 'the new headend process resumed the ticket of the old one');
  assert.equal(count(h, RESUMED), 1);
  await new Promise((r) => setTimeout(r, 300));

  // Rotation: a new current key, the old one second: a ticket of the old key still resumes.
  writeFileSync(d.path('tickets.keys'), `${key()}\n${k1}\n`);
  await restart();
  await waitFor('up after the rotation', 10_000, () => c.status().state === 'up');
  assert.equal(c.status().tlsResumed, true, 'a ticket of the previous key is accepted');
  await new Promise((r) => setTimeout(r, 300));

  // Revoked in the registry: the resumed connection is refused at admission.
  writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100 } }, { 'A-1': { state: 'revoked' } }));
  await restart();
  await waitFor('the refusal', 10_000, () => reasons.some((r) => r.includes('refused')));
  assert.ok(count(h, RESUMED) >= 1, 'the refused attempt was a resumption');
  assert.match(h.renderMetrics(), /^connector_headend_refusals_total\{reason="revoked"\} [1-9]/m);
  assert.notEqual(c.status().state, 'up');
  t.diagnostic(`reasons: ${reasons.join(' | ')}`);
});
