// SPDX-License-Identifier: UNLICENSED
// The status socket is root's only, whatever the umask the agent was started with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { fetchStatus, serveStatus } from '../../../../src/agent/adapters/status-socket.js';
import { tempDir } from '../../../helpers/tmp.js';

test('the status socket is mode 0600 even under umask 000, and still answers', async (t) => {
  const d = tempDir(t, 'ck-status-', true);
  const old = process.umask(0);
  let server: Awaited<ReturnType<typeof serveStatus>>;
  try {
    server = await serveStatus(d.path('agent.sock'), () => ({ ok: true }));
  } finally {
    process.umask(old);
  }
  t.after(() => server.close());
  assert.equal(statSync(d.path('agent.sock')).mode & 0o777, 0o600);
  assert.equal(process.umask(), old, 'the process umask is restored');
  assert.deepEqual(await fetchStatus(d.path('agent.sock')), { ok: true });
});
