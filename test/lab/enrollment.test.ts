// SPDX-License-Identifier: UNLICENSED
// Zero-touch in the lab: a Connector that holds nothing but its factory block enrolls over EST (through
// the customer's NAT and the CGNAT, like the tunnel) and opens its tunnel with no manual step; a unit
// nobody has claimed waits with a reason until `connector registry claim`; a factory block signed by
// another manufacturer's CA gets nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFactoryBlock } from '../../src/shared/factory-block/block-io.js';
import { idevidIssuedBy } from '../../src/shared/factory-block/verify.js';
import { FACTORY_BLOCK_OFFSET } from '../../src/shared/factory-block/factory-block.js';
import { exec } from '../../src/shared/exec.js';
import { programCommand } from '../../src/lab/adapters/programs.js';
import { TENANT_SERIAL } from '../../src/lab/core/topology.js';
import { provisionLabUnit, wipeIdentity } from '../../src/lab/adapters/units.js';
import { labSkipReason, openLab, type LabHandle } from './lab-fixture.js';
import { waitFor } from '../helpers/wait.js';

const skip = labSkipReason({ headend: true, agents: true });
const VM = '192.168.10.5';

/** `connector <args>` as an operator would type it (root namespace: the registry is a file). */
async function connectorCli(args: readonly string[]): Promise<{ code: number; out: string }> {
  const c = programCommand('connector');
  const r = await exec(c.cmd, [...c.args, ...args], { cwd: c.cwd, allowFailure: true, timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

type IdentityDoc = { state?: string; reason?: string; serial?: string; fingerprint?: string; attempts?: number };

async function identityOf(lab: LabHandle, tenant: 'a' | 'b'): Promise<IdentityDoc & { phase?: string; tunnel?: unknown }> {
  try {
    const doc = await lab.agentStatus(tenant);
    return { ...((doc['identity'] ?? {}) as IdentityDoc), phase: doc['phase'] as string, tunnel: doc['tunnel'] };
  } catch {
    return {}; // the status socket is not there yet
  }
}

function logTimes(file: string, msg: string): number | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { time?: string; msg?: string };
    if (j.msg === msg && j.time) return Date.parse(j.time);
  }
  return undefined;
}

const hexFp = (pem: string): string => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe('zero-touch enrollment in the lab (EST through the NATs, then the tunnel)', { skip }, () => {
  let lab: LabHandle;
  const f = (k: string): string => lab.state().files[k] ?? assert.fail(`lab file ${k} missing`);
  before(async () => {
    // The agents are started by the tests, so the clock starts at the agent's start.
    lab = await openLab(undefined, { headend: true, agents: false });
  });
  after(() => lab?.down());

  test('a Connector holding only its factory block reaches a working tunnel, no manual step', async () => {
    const idDir = f('identity:connector');
    assert.deepEqual(readdirSync(idDir), [], 'no operational identity before the first start');
    const block = readFactoryBlock(f('unit:connector'), FACTORY_BLOCK_OFFSET);
    assert.ok(block.ok, 'the unit disk holds a factory block at 24 MiB');
    assert.equal(block.data.serial, TENANT_SERIAL.a);
    assert.ok(idevidIssuedBy(block.data, readFileSync(join(f('factoryCaDir'), 'factory-ca.cert.pem'), 'utf8')));
    const read = await connectorCli([
      'factory',
      'read',
      '--target',
      f('unit:connector'),
      '--ca',
      join(f('factoryCaDir'), 'factory-ca.cert.pem'),
    ]);
    assert.equal(read.code, 0, read.out);

    const t0 = Date.now();
    lab.start('agent-a');
    const ms = await lab.waitPing('lan-host', VM, 30_000);
    const log = lab.state().processes.find((p) => p.name === 'agent-a')?.log ?? '';
    const enrolled = logTimes(log, 'enrolled');
    const up = logTimes(log, 'tunnel up');
    console.log(`# zero-touch: agent start -> first frame across the tunnel (lan-host ping answered by vm): ${ms} ms`);
    console.log(
      `#   of which: agent start -> enrolled ${enrolled ? enrolled - t0 : '?'} ms, -> tunnel up ${up ? up - t0 : '?'} ms (agent log)`,
    );

    const id = await identityOf(lab, 'a');
    assert.equal(id.state, 'ready', JSON.stringify(id));
    assert.equal(id.serial, TENANT_SERIAL.a);
    const certPem = readFileSync(join(idDir, 'op.cert.pem'), 'utf8');
    assert.equal(id.fingerprint, hexFp(certPem), 'status shows the certificate on disk');
    const cert = new X509Certificate(certPem);
    assert.ok(cert.checkIssued(new X509Certificate(readFileSync(f('deviceCa'), 'utf8'))), 'issued by the DC device CA the headend trusts');
    assert.match(cert.subject, new RegExp(`CN=${TENANT_SERIAL.a}`));
    const issued = readFileSync(f('issuanceLog'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    assert.ok(
      issued.some(
        (r) => r['serial'] === TENANT_SERIAL.a && r['op'] === 'simpleenroll' && r['tenant'] === 'a' && r['fingerprint'] === id.fingerprint,
      ),
    );
    assert.equal(issued.find((r) => r['serial'] === TENANT_SERIAL.a)?.['remote'], '203.0.113.1', 'the EST server saw the CGNAT address');
    const back = await lab.ping('vm', '192.168.10.20', { count: 2 });
    assert.equal(back.received, 2, 'and back');
  });

  /** Writes a new factory block onto connector-b's disk (from the given factory CA) and empties its identity. */
  async function reprovisionUnitB(serial: string, factoryCa: 'factoryCaDir' | 'rogueFactoryCaDir') {
    const unit = await provisionLabUnit({
      serial,
      target: f('unit:connector-b'),
      factoryCaDir: f(factoryCa),
      estUrl: f('estUrl'),
      dcAnchorFile: f('dcCa'),
      manifestDir: f('manifestDir'),
    });
    wipeIdentity(f('identity:connector-b'));
    return unit;
  }

  test('an unclaimed unit waits, says why, and enrolls after `connector registry claim`', async () => {
    const serial = 'LAB-B-0002';
    const unit = await reprovisionUnitB(serial, 'factoryCaDir');
    const imp = await connectorCli(['registry', 'import', '--registry', f('registry'), unit.allowlist]);
    assert.equal(imp.code, 0, imp.out);

    lab.start('agent-b');
    const waiting = await waitFor(
      'agent-b waiting for its claim',
      20_000,
      async () => {
        const id = await identityOf(lab, 'b');
        return id.state === 'waiting-for-claim' && (id.attempts ?? 0) >= 2 ? id : undefined;
      },
      200,
    );
    console.log(`# unclaimed unit: identity ${waiting.state}, reason "${waiting.reason}", ${waiting.attempts} attempts`);
    assert.match(waiting.reason ?? '', /not claimed/);
    assert.equal(waiting.phase, 'identity', 'no tunnel before an identity');
    assert.equal(waiting.tunnel, undefined);
    assert.equal(existsSync(join(f('identity:connector-b'), 'op.cert.pem')), false);
    assert.equal((await lab.ping('lan-b', VM, { count: 1, timeoutS: 0.5 })).received, 0, 'tenant B has no tunnel yet');

    const claim = await connectorCli([
      'registry',
      'claim',
      '--registry',
      f('registry'),
      '--serial',
      serial,
      '--tenant',
      'b',
      '--segment',
      'default',
    ]);
    assert.equal(claim.code, 0, claim.out);
    const t1 = Date.now();
    await lab.waitPing('lan-b', VM, 30_000);
    console.log(`# claim -> first frame across tenant B's tunnel: ${Date.now() - t1} ms (the unit retries every 2 s: Retry-After)`);
    const id = await identityOf(lab, 'b');
    assert.equal(id.state, 'ready');
    assert.equal(id.serial, serial);
  });

  test('a factory block signed by another CA is refused: no identity, a clear reason, nothing issued', async () => {
    await lab.kill('agent-b', 'SIGTERM');
    const serial = 'LAB-B-0003';
    const unit = await reprovisionUnitB(serial, 'rogueFactoryCaDir');
    // Allowlisted and claimed, so the foreign CA is the only thing wrong with it.
    assert.equal((await connectorCli(['registry', 'import', '--registry', f('registry'), unit.allowlist])).code, 0);
    const claim = await connectorCli([
      'registry',
      'claim',
      '--registry',
      f('registry'),
      '--serial',
      serial,
      '--tenant',
      'b',
      '--segment',
      'default',
    ]);
    assert.equal(claim.code, 0, claim.out);
    const issuedBefore = readFileSync(f('issuanceLog'), 'utf8');

    lab.start('agent-b');
    const refused = await waitFor(
      'agent-b refused',
      20_000,
      async () => {
        const id = await identityOf(lab, 'b');
        return id.state === 'refused' ? id : undefined;
      },
      200,
    );
    console.log(`# foreign factory CA: identity ${refused.state}, reason "${refused.reason}"`);
    assert.match(refused.reason ?? '', /refused enrollment: HTTP 403/);
    assert.equal(refused.phase, 'identity');
    assert.equal(refused.tunnel, undefined);
    for (const file of ['op.key.pem', 'op.cert.pem'])
      assert.equal(existsSync(join(f('identity:connector-b'), file)), false, `${file} must not exist`);
    assert.equal(readFileSync(f('issuanceLog'), 'utf8'), issuedBefore, 'nothing issued');
    const estLog = readFileSync(lab.state().processes.find((p) => p.name === 'est')?.log ?? '', 'utf8');
    assert.match(estLog, /"msg":"est refused".*"reason":"untrusted-client-cert"/);
    assert.equal((await lab.ping('lan-b', VM, { count: 1, timeoutS: 0.5 })).received, 0);
    await lab.kill('agent-b', 'SIGTERM');
  });
});
