// SPDX-License-Identifier: UNLICENSED
// Certificate life in the lab, with 60 s operational certificates: renewal at 2/3 of the lifetime puts a
// new certificate (new key) in place while the tunnel session carries on, with no lost ping; the next
// handshake presents it. A revoked unit is dropped by the headend as soon as it reloads the registry,
// cannot come back, and is refused by the EST server when it tries to renew.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../src/shared/exec.js';
import { programCommand } from '../../src/lab/adapters/programs.js';
import { TENANT_SERIAL } from '../../src/lab/core/topology.js';
import { labSkipReason, openLab, type LabHandle } from './lab-fixture.js';
import { waitFor } from '../helpers/wait.js';

const skip = labSkipReason({ headend: true, agents: true });
const VM = '192.168.10.5';
const LIFETIME_S = 60;

async function connectorCli(args: readonly string[]): Promise<{ code: number; out: string }> {
  const c = programCommand('connector');
  const r = await exec(c.cmd, [...c.args, ...args], { cwd: c.cwd, allowFailure: true, timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

interface AgentView {
  identity: { state?: string; reason?: string; fingerprint?: string; renewAt?: string; notAfter?: string };
  tunnel: { state?: string; sessionId?: string | null; reconnects?: number };
}

async function view(lab: LabHandle, tenant: 'a' | 'b'): Promise<AgentView> {
  const doc = await lab.agentStatus(tenant);
  return { identity: (doc['identity'] ?? {}) as AgentView['identity'], tunnel: (doc['tunnel'] ?? {}) as AgentView['tunnel'] };
}

const hexFp = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

function jsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe(`renewal and revocation in the lab (${LIFETIME_S} s certificates)`, { skip }, () => {
  let lab: LabHandle;
  const f = (k: string): string => lab.state().files[k] ?? assert.fail(`lab file ${k} missing`);
  const pid = (name: string): number => lab.state().processes.find((p) => p.name === name)?.pid ?? 0;
  before(async () => {
    lab = await openLab(undefined, { headend: true, agents: true, certLifetimeS: LIFETIME_S });
  });
  after(() => lab?.down());

  test('renewal replaces the certificate without dropping the tunnel; a revoked unit is dropped and refused', async () => {
    const a0 = await view(lab, 'a');
    const b0 = await view(lab, 'b');
    assert.equal(a0.tunnel.state, 'up');
    assert.equal(b0.tunnel.state, 'up');
    assert.equal(a0.identity.state, 'ready');
    const certFile = join(f('identity:connector'), 'op.cert.pem');
    const fp0 = hexFp(readFileSync(certFile, 'utf8'));
    assert.equal(a0.identity.fingerprint, fp0);
    const renewAt = Date.parse(a0.identity.renewAt ?? '');
    assert.ok(Number.isFinite(renewAt), `renewAt in status: ${JSON.stringify(a0.identity)}`);
    const notAfter = Date.parse(a0.identity.notAfter ?? '');
    console.log(
      `# tenant A certificate: renewal due in ${((renewAt - Date.now()) / 1000).toFixed(1)} s, expires in ${((notAfter - Date.now()) / 1000).toFixed(1)} s`,
    );

    // A continuous ping across the renewal (5 per second until 6 s past the renewal point).
    const count = Math.ceil((renewAt - Date.now() + 6_000) / 200);
    const pinging = lab.ping('lan-host', VM, { count, intervalS: 0.2, timeoutS: 1 });

    // Meanwhile, tenant B's unit is revoked; the headend drops it on its registry reload.
    const revoke = await connectorCli(['registry', 'revoke', '--registry', f('registry'), '--serial', TENANT_SERIAL.b]);
    assert.equal(revoke.code, 0, revoke.out);
    const tRevoke = Date.now();
    process.kill(pid('headend'), 'SIGHUP');
    await waitFor('the headend to drop the revoked unit', 10_000, async () =>
      (await view(lab, 'b')).tunnel.state !== 'up' ? true : undefined,
    );
    console.log(`# revoke + reload -> tenant B's session dropped in ${Date.now() - tRevoke} ms`);
    const heLog = jsonLines(lab.state().processes.find((p) => p.name === 'headend')?.log ?? '');
    assert.ok(
      heLog.some(
        (l) => l['msg'] === 'registry change refuses a connected device' && l['serial'] === TENANT_SERIAL.b && l['reason'] === 'denylisted',
      ),
      'the headend says why it dropped the session',
    );
    await new Promise((r) => setTimeout(r, 3_000)); // the agent keeps retrying; each attempt must be refused
    assert.notEqual((await view(lab, 'b')).tunnel.state, 'up', 'a revoked unit cannot reconnect');
    assert.ok(
      jsonLines(f('auditLog')).some((r) => r['event'] === 'refused' && r['serial'] === TENANT_SERIAL.b && r['reason'] === 'denylisted'),
      'its reconnect attempts are refused and audited',
    );
    assert.equal((await lab.ping('lan-b', VM, { count: 1, timeoutS: 0.5 })).received, 0);

    // Renewal of A: a new certificate on disk and in status, the same session.
    const a1 = await waitFor(
      'tenant A to renew',
      renewAt - Date.now() + 20_000,
      async () => {
        const v = await view(lab, 'a');
        return v.identity.fingerprint && v.identity.fingerprint !== fp0 && v.identity.state === 'ready' ? v : undefined;
      },
      250,
    );
    const fp1 = hexFp(readFileSync(certFile, 'utf8'));
    console.log(
      `# tenant A renewed ${((Date.now() - renewAt) / 1000).toFixed(1)} s after the renewal point: ${fp0.slice(0, 12)}... -> ${fp1.slice(0, 12)}...`,
    );
    assert.equal(a1.identity.fingerprint, fp1, 'status and op.cert.pem agree on the new certificate');
    assert.equal(a1.tunnel.state, 'up');
    assert.equal(a1.tunnel.sessionId, a0.tunnel.sessionId, 'same tunnel session');
    assert.equal(a1.tunnel.reconnects, a0.tunnel.reconnects, 'no reconnect');
    const issued = jsonLines(f('issuanceLog'));
    assert.ok(issued.some((r) => r['serial'] === TENANT_SERIAL.a && r['op'] === 'simplereenroll' && r['fingerprint'] === fp1));

    const ping = await pinging;
    console.log(`# continuous ping across the renewal: ${ping.received}/${ping.sent} answered`);
    assert.ok(ping.sent >= count - 1);
    assert.ok(ping.received >= ping.sent - 1, `at most one ping lost across the renewal: ${ping.received}/${ping.sent}`);

    // B tried to renew too (its certificate was issued at the same time): the EST server says 403.
    const b1 = await waitFor(
      'tenant B renewal refused',
      20_000,
      async () => {
        const v = await view(lab, 'b');
        return v.identity.state === 'refused' ? v : undefined;
      },
      250,
    );
    console.log(`# revoked unit at renewal: identity ${b1.identity.state}, reason "${b1.identity.reason}"`);
    assert.match(b1.identity.reason ?? '', /refused renewal: HTTP 403/);
    assert.ok(
      !issued.some((r) => r['serial'] === TENANT_SERIAL.b && r['op'] === 'simplereenroll'),
      'nothing re-issued to the revoked unit',
    );
  });

  test('the next handshake presents the renewed certificate', async () => {
    const before = await view(lab, 'a');
    // Kill the headend: the agent reconnects, and the new session is opened with the renewed certificate.
    await lab.kill('headend', 'SIGKILL');
    lab.start('headend');
    await lab.waitPing('lan-host', VM, 20_000);
    const after = await view(lab, 'a');
    assert.notEqual(after.tunnel.sessionId, before.tunnel.sessionId);
    const connects = jsonLines(f('auditLog')).filter((r) => r['event'] === 'connect' && r['serial'] === TENANT_SERIAL.a);
    const last = connects.at(-1);
    assert.ok(last, 'audit log has tenant A connects');
    const fp = String(last['fingerprint'] ?? last['certFingerprint'] ?? '')
      .replace(/:/g, '')
      .toLowerCase();
    assert.equal(
      fp,
      after.identity.fingerprint,
      `the audit record of the new session carries the renewed certificate: ${JSON.stringify(last)}`,
    );
    assert.notEqual(
      fp,
      String(connects[0]?.['fingerprint'] ?? '')
        .replace(/:/g, '')
        .toLowerCase(),
      'and not the first one',
    );
  });
});
