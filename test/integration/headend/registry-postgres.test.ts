// SPDX-License-Identifier: UNLICENSED
// The headend on the PostgreSQL registry: admission from the database, an operator's revoke reaching the
// running headend by NOTIFY (the session is closed), and a database outage that keeps the last good
// registry serving admissions while the metrics say the backend is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/shared/log.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { parseRegistry, revokeDevice } from '../../../src/shared/registry/registry.js';
import { PostgresRegistryStore } from '../../../src/shared/registry/registry-postgres.js';
import { headendConfigDoc, rawTunnel, registryDoc } from './adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { startPostgres } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

test('headend on PostgreSQL: admits from the database, follows a revoke by NOTIFY, rides out an outage', async (t) => {
  const pgs = startPostgres(t);
  if (!pgs) return;
  const url = pgs.newDatabase();
  const operator = await PostgresRegistryStore.open(url, { backoffMs: { min: 50, max: 200 } });
  t.after(() => operator.close());
  await operator.update(() => parseRegistry(registryDoc({ acme: { vni: 100, vteps: ['127.0.0.2'] } }, { 'A-1': 'acme', 'A-2': 'acme' })));

  const d = tempDir(t, 'ck-he-pg-', true);
  const pki = await createTestPki(d.dir);
  const doc = { ...headendConfigDoc(d, pki), registry: { postgres: url } };
  const headend = await startHeadend(parseHeadendConfig(doc, d.dir), { log: silentLogger, registryPollMs: 0 });
  t.after(async () => {
    await headend.close();
    d.remove();
  });

  const a1 = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-1'), pki.dcCa.pem);
  t.after(() => a1.socket.destroy());
  const ack = await a1.hello();
  assert.equal(ack.type === 'hello-ack' && ack.vni, 100);

  const t0 = performance.now();
  await operator.update((r) => revokeDevice(r, 'A-1', new Date()));
  await a1.closed;
  t.diagnostic(`revoke to session closed: ${(performance.now() - t0).toFixed(1)} ms`);
  const bye = a1.control.find((m) => m.type === 'bye');
  // revoke also denylists the serial, which admission checks first.
  assert.equal(bye?.type === 'bye' && bye.reason, 'registry:denylisted');
  assert.match(headend.renderMetrics(), /connector_headend_registry_connected 1/);

  pgs.stop();
  await waitFor('the headend to report the registry database gone', 5_000, () =>
    /connector_headend_registry_connected 0/.test(headend.renderMetrics()),
  );
  const a2 = await rawTunnel(headend.tunnelAddress.port, await pki.client('A-2'), pki.dcCa.pem);
  t.after(() => a2.socket.destroy());
  const ack2 = await a2.hello();
  assert.equal(ack2.type === 'hello-ack' && ack2.vni, 100, 'the last good registry still admits');
  pgs.start();
  await waitFor('the headend to reconnect', 10_000, () => /connector_headend_registry_connected 1/.test(headend.renderMetrics()));
});
