// SPDX-License-Identifier: UNLICENSED
// Device side of zero-touch enrollment against an in-process EST server on 127.0.0.1: the agent's
// identity code starts from nothing but a factory block in a file (the lab's stand-in for the eMMC).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../../../src/shared/log.js';
import { createSelfSignedCa, generateKeyPair, type Issuer } from '../../../../../src/shared/pki/x509.js';
import { encodeFactoryBlock, FACTORY_BLOCK_OFFSET, FACTORY_REGION_SIZE } from '../../../../../src/shared/factory-block/factory-block.js';
import { writeFactoryRegion, readFactoryBlock } from '../../../../../src/shared/factory-block/block-io.js';
import { issueIdevid } from '../../../../../src/factory/core/idevid.js';
import {
  ensureIdentity,
  runRenewal,
  IdentityStatusTracker,
  renewAtOf,
  type IdentityClock,
  type Identity,
} from '../../../../../src/agent/adapters/identity/index.js';
import { createEstFixture, type EstFixture } from '../../../enroll/est-fixture.js';
import { waitFor } from '../../../../helpers/wait.js';

interface FakeClock extends IdentityClock {
  set(ms: number): void;
  sleeps: number[];
}

/** Sleeping advances this clock at once, then yields to real I/O briefly so sockets make progress. */
function fakeClock(start: number): FakeClock {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        sleeps.push(ms);
        now += ms;
        const t = setTimeout(resolve, 5);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            reject(signal.reason as Error);
          },
          { once: true },
        );
      }),
  };
}

async function unitFiles(t: TestContext, fx: EstFixture, serial: string, factoryCa?: Issuer) {
  const dir = join(fx.dir, `unit-${serial}`);
  mkdirSync(dir);
  const disk = join(dir, 'mmcblk0.img');
  writeFileSync(disk, '');
  truncateSync(disk, 32 * 1024 * 1024); // sparse stand-in for the eMMC up to p1
  const id = await issueIdevid(factoryCa ?? fx.factoryCa, serial, '1.0', new Date());
  const block = encodeFactoryBlock({
    serial,
    hwRev: '1.0',
    macs: [],
    idevidChainPem: id.chainPem,
    idevidKeyPem: id.keyPem,
    estUrl: fx.server.url,
    dcAnchorPem: fx.anchorPem,
    batch: 'b1',
    station: 'st1',
    createdAt: new Date(Date.now() - 86_400_000).toISOString(),
  });
  writeFactoryRegion(disk, FACTORY_BLOCK_OFFSET, block);
  const identityDir = join(dir, 'etc-connector');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { disk, identityDir, idevid: id };
}

function opts(u: { disk: string; identityDir: string }, clock: IdentityClock, status: IdentityStatusTracker, signal?: AbortSignal) {
  return {
    identityDir: u.identityDir,
    factoryBlockPath: u.disk,
    factoryBlockOffset: FACTORY_BLOCK_OFFSET,
    clock,
    log: silentLogger,
    status,
    random: () => 0.5,
    ...(signal ? { signal } : {}),
  };
}

/** The factory allowlist import and the tenant's claim, as the operator does them. */
async function allowAndClaim(fx: EstFixture, serial: string): Promise<void> {
  const { importAllowlist, claimDevice } = await import('../../../../../src/shared/registry/registry.js');
  const { updateRegistryFile } = await import('../../../../../src/shared/registry/registry-file.js');
  await updateRegistryFile(fx.registryFile, (r) => claimDevice(importAllowlist(r, [{ serial }], new Date()), serial, 'acme', new Date()));
}

/** A claimed unit enrolled on a fake clock that the EST server shares (so lifetimes are predictable). */
async function enrolledUnit(t: TestContext, lifetimeS: number, serial: string) {
  const fx = await createEstFixture({ lifetimeS });
  t.after(() => fx.close());
  const u = await unitFiles(t, fx, serial);
  await allowAndClaim(fx, serial);
  const clock = fakeClock(Date.now());
  fx.setNow(new Date(clock.now()));
  const status = new IdentityStatusTracker(clock.now);
  const first = await ensureIdentity(opts(u, clock, status));
  return { fx, u, clock, status, first };
}

const issuedCount = (fx: EstFixture): number =>
  existsSync(fx.issuanceLogFile) ? readFileSync(fx.issuanceLogFile, 'utf8').trim().split('\n').length : 0;

test('a unit with only a factory block obtains an operational identity', async (t) => {
  const fx = await createEstFixture();
  t.after(() => fx.close());
  const serial = 'R3S-DEV-0001';
  const u = await unitFiles(t, fx, serial);
  await fx.idevid('placeholder-not-used', { register: false });
  // register this unit's IDevID fingerprint as the factory manifest would
  const { importAllowlist } = await import('../../../../../src/shared/registry/registry.js');
  const { updateRegistryFile } = await import('../../../../../src/shared/registry/registry-file.js');
  const { certFingerprint } = await import('../../../../../src/shared/pki/x509.js');
  await updateRegistryFile(fx.registryFile, (r) =>
    importAllowlist(r, [{ serial, idevidFingerprint: certFingerprint(u.idevid.cert) }], new Date()),
  );
  await fx.claim(serial);

  const clock = fakeClock(Date.now());
  const status = new IdentityStatusTracker(clock.now);
  const started = performance.now();
  const id = await ensureIdentity(opts(u, clock, status));
  t.diagnostic(
    `first enrollment (factory block read, keygen, CSR, simpleenroll, cacerts, store): ${(performance.now() - started).toFixed(1)} ms`,
  );
  assert.equal(id.serial, serial);
  assert.equal(status.snapshot().state, 'ready');
  const leaf = new X509Certificate(readFileSync(join(u.identityDir, 'op.cert.pem')));
  assert.match(leaf.subject, new RegExp(`CN=${serial}`));
  assert.match(leaf.subject, new RegExp(`serialNumber=${serial}`));
  assert.ok(leaf.verify(new X509Certificate(fx.deviceCaPem).publicKey), 'signed by the DC device CA');
  assert.equal(statSync(join(u.identityDir, 'op.key.pem')).mode & 0o777, 0o600);
  assert.equal(readFileSync(join(u.identityDir, 'dc-ca.pem'), 'utf8'), fx.anchorPem);
  assert.ok(existsSync(join(u.identityDir, 'factory-block.bin')), 'factory block copied under the identity dir');
  // the key in the identity dir is not the IDevID key: it was generated on the device
  assert.notEqual(readFileSync(join(u.identityDir, 'op.key.pem'), 'utf8'), u.idevid.keyPem);

  // a restart reuses the stored identity without asking the server
  const before = issuedCount(fx);
  const again = await ensureIdentity(opts(u, clock, new IdentityStatusTracker(clock.now)));
  assert.equal(again.fingerprint, id.fingerprint);
  assert.equal(issuedCount(fx), before);

  // factory reset: identity gone -> re-enrolls with the IDevID
  unlinkSync(join(u.identityDir, 'op.key.pem'));
  unlinkSync(join(u.identityDir, 'op.cert.pem'));
  const fresh = await ensureIdentity(opts(u, clock, new IdentityStatusTracker(clock.now)));
  assert.notEqual(fresh.fingerprint, id.fingerprint);
  assert.equal(issuedCount(fx), before + 1);

  // full-disk write erased the raw block: it is rewritten from the copy
  writeFactoryRegion(u.disk, FACTORY_BLOCK_OFFSET, Buffer.alloc(0));
  assert.equal(readFactoryBlock(u.disk, FACTORY_BLOCK_OFFSET).ok, false);
  await ensureIdentity(opts(u, clock, new IdentityStatusTracker(clock.now)));
  const repaired = readFactoryBlock(u.disk, FACTORY_BLOCK_OFFSET);
  assert.ok(repaired.ok && repaired.data.serial === serial);
  // ...but a region holding foreign data is never overwritten
  writeFactoryRegion(u.disk, FACTORY_BLOCK_OFFSET, Buffer.alloc(FACTORY_REGION_SIZE, 0xa5));
  await ensureIdentity(opts(u, clock, new IdentityStatusTracker(clock.now)));
  assert.equal(readFactoryBlock(u.disk, FACTORY_BLOCK_OFFSET).ok, false);
});

test('an unclaimed unit waits, honouring Retry-After, and enrolls after the claim', async (t) => {
  const fx = await createEstFixture({ retryAfterS: 42 });
  t.after(() => fx.close());
  const serial = 'R3S-DEV-0002';
  const u = await unitFiles(t, fx, serial);
  const { importAllowlist } = await import('../../../../../src/shared/registry/registry.js');
  const { updateRegistryFile } = await import('../../../../../src/shared/registry/registry-file.js');
  await updateRegistryFile(fx.registryFile, (r) => importAllowlist(r, [{ serial }], new Date()));
  const clock = fakeClock(Date.now());
  const status = new IdentityStatusTracker(clock.now);
  // Aborted after the test, so a failed assertion cannot leave the enrollment loop keeping the file alive.
  const ac = new AbortController();
  t.after(() => ac.abort());
  const pending = ensureIdentity(opts(u, clock, status, ac.signal));
  pending.catch(() => {});
  await waitFor('waiting-for-claim', 10_000, () => status.snapshot().state === 'waiting-for-claim' && clock.sleeps.length >= 2, 5);
  assert.ok(
    clock.sleeps.every((ms) => ms === 42_000),
    `sleeps follow Retry-After: ${clock.sleeps.join(',')}`,
  );
  assert.match(status.snapshot().reason ?? '', /not claimed/);
  // the operator's command, on the same registry file the EST server watches
  const { exec } = await import('../../../../../src/shared/exec.js');
  const claim = await exec(process.execPath, [
    '--import',
    'tsx',
    join(process.cwd(), 'src/cli/connector.ts'),
    'registry',
    'claim',
    '--registry',
    fx.registryFile,
    '--serial',
    serial,
    '--tenant',
    'acme',
  ]);
  assert.match(claim.stdout, /claimed R3S-DEV-0002 for tenant acme/);
  const id = await pending;
  assert.equal(id.serial, serial);
  assert.equal(status.snapshot().state, 'ready');
});

test('a factory block whose IDevID comes from another CA is refused', async (t) => {
  const fx = await createEstFixture();
  t.after(() => fx.close());
  const keys = await generateKeyPair(true);
  const rogue = await createSelfSignedCa({ cn: 'Rogue Factory' }, keys, new Date(Date.now() - 3600_000), new Date(Date.now() + 86_400_000));
  const serial = 'R3S-DEV-0003';
  const u = await unitFiles(t, fx, serial, { cert: rogue, privateKey: keys.privateKey });
  await allowAndClaim(fx, serial);
  const clock = fakeClock(Date.now());
  const status = new IdentityStatusTracker(clock.now);
  const ac = new AbortController();
  const p = ensureIdentity(opts(u, clock, status, ac.signal));
  await waitFor('refused', 10_000, () => status.snapshot().state === 'refused', 5);
  assert.match(status.snapshot().reason ?? '', /403/);
  ac.abort();
  await assert.rejects(p);
  assert.equal(existsSync(join(u.identityDir, 'op.cert.pem')), false);
  assert.equal(issuedCount(fx), 0);
});

// The allowlist binds a serial to the IDevID the station issued: a copied serial with another IDevID
// (same factory CA) must not enroll.
test('an IDevID whose fingerprint differs from the allowlisted one is refused', async (t) => {
  const fx = await createEstFixture();
  t.after(() => fx.close());
  const serial = 'R3S-DEV-0006';
  const u = await unitFiles(t, fx, serial);
  const { importAllowlist, claimDevice } = await import('../../../../../src/shared/registry/registry.js');
  const { updateRegistryFile } = await import('../../../../../src/shared/registry/registry-file.js');
  await updateRegistryFile(fx.registryFile, (r) =>
    claimDevice(importAllowlist(r, [{ serial, idevidFingerprint: 'ab'.repeat(32) }], new Date()), serial, 'acme', new Date()),
  );
  const clock = fakeClock(Date.now());
  const status = new IdentityStatusTracker(clock.now);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const p = ensureIdentity(opts(u, clock, status, ac.signal));
  p.catch(() => {});
  await waitFor('refused', 10_000, () => status.snapshot().state === 'refused', 5);
  assert.match(status.snapshot().reason ?? '', /403/);
  assert.equal(issuedCount(fx), 0);
});

test('renewal at 2/3 of the lifetime replaces the files atomically; a revoked unit is refused', async (t) => {
  const serial = 'R3S-DEV-0004';
  const { fx, u, clock, status, first } = await enrolledUnit(t, 3 * 3600, serial);
  const certPath = join(u.identityDir, 'op.cert.pem');
  const keyPath = join(u.identityDir, 'op.key.pem');
  const inoBefore = statSync(certPath).ino;
  const keyBefore = readFileSync(keyPath, 'utf8');

  const renewed: { identity: Identity; at: number }[] = [];
  const start = clock.now();
  const stop = runRenewal({
    ...opts(u, clock, status),
    identity: first,
    maxSleepMs: 24 * 3600_000,
    onRenewed: (identity) => {
      renewed.push({ identity, at: clock.now() });
      fx.setNow(new Date(clock.now()));
    },
  });
  t.after(stop);
  // the server issues on the device's (fake) clock, so the cert's 2/3 point is predictable
  await waitFor('first renewal', 10_000, () => renewed.length >= 1, 5);
  const r0 = renewed[0];
  assert.ok(r0);
  assert.equal(clock.sleeps[0], renewAtOf(first).getTime() - start, 'slept exactly until 2/3 of the lifetime');
  assert.ok(r0.at >= renewAtOf(first).getTime(), 'not before 2/3');
  const lifetime = first.notAfter.getTime() - first.notBefore.getTime();
  assert.equal(renewAtOf(first).getTime() - first.notBefore.getTime(), Math.floor((lifetime * 2) / 3));
  assert.ok(r0.at < first.notAfter.getTime(), 'before expiry');
  assert.notEqual(r0.identity.fingerprint, first.fingerprint);
  assert.notEqual(statSync(certPath).ino, inoBefore, 'certificate file replaced by rename, not rewritten in place');
  assert.notEqual(readFileSync(keyPath, 'utf8'), keyBefore, 'rekeyed');
  assert.equal(statSync(keyPath).mode & 0o777, 0o600);
  assert.deepEqual(
    readdirSync(u.identityDir).filter((f) => f.endsWith('.new')),
    [],
  );
  const leaf = new X509Certificate(readFileSync(certPath));
  assert.equal(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(keyPath))), true);
  await stop();

  // revoked: the next renewal is refused and the files stay as they are. Start again from a cert that
  // is valid on the server's real clock (the renewed one was issued on the device's fake future clock).
  clock.set(Date.now());
  fx.setNow(new Date(clock.now()));
  unlinkSync(keyPath);
  const status2 = new IdentityStatusTracker(clock.now);
  const current = await ensureIdentity(opts(u, clock, status2));
  await fx.revoke(serial);
  const stop2 = runRenewal({
    ...opts(u, clock, status2),
    identity: current,
    maxSleepMs: 24 * 3600_000,
    onRenewed: () => assert.fail('renewed a revoked unit'),
  });
  t.after(stop2);
  await waitFor('renewal refused', 10_000, () => status2.snapshot().state === 'refused', 5);
  assert.match(status2.snapshot().reason ?? '', /revoked|denylisted/);
  await stop2();
  assert.equal(new X509Certificate(readFileSync(certPath)).fingerprint256, new X509Certificate(current.certPem).fingerprint256);
});

test('with the clock before min_time the unit waits with a reason, then resumes when time is set', async (t) => {
  const fx = await createEstFixture();
  t.after(() => fx.close());
  const serial = 'R3S-DEV-0005';
  const u = await unitFiles(t, fx, serial);
  await allowAndClaim(fx, serial);
  const realNow = Date.now();
  // an R3S after power loss: 1970, and sleeping does not bring it anywhere near the build time
  const clock = fakeClock(0);
  const status = new IdentityStatusTracker(clock.now);
  const p = ensureIdentity({ ...opts(u, clock, status), minTimeS: Math.floor(realNow / 1000) - 3600, clockPollMs: 1000 });
  await waitFor('waiting-for-time', 10_000, () => status.snapshot().state === 'waiting-for-time' && clock.sleeps.length >= 3, 5);
  assert.match(status.snapshot().reason ?? '', /earlier than the image build time/);
  assert.equal(existsSync(join(u.identityDir, 'op.cert.pem')), false, 'nothing enrolled while the clock is unset');
  clock.set(realNow); // sysntpd synced
  const id = await p;
  assert.equal(id.serial, serial);
  assert.equal(status.snapshot().state, 'ready');
});

// Regression: with a lifetime shorter than 3/2 of the CA's notBefore backdating (300 s by default), the
// 2/3 point of a fresh certificate lies in the past on arrival and renewal ran in a tight loop.
test('a short-lived certificate is renewed 2/3 into what is left of it on arrival, not again at once', async (t) => {
  const { fx, u, clock, status, first } = await enrolledUnit(t, 120, 'R3S-DEV-0005');
  const renewed: { identity: Identity; at: number }[] = [];
  const stop = runRenewal({
    ...opts(u, clock, status),
    identity: first,
    onRenewed: (identity) => {
      renewed.push({ identity, at: clock.now() });
      fx.setNow(new Date(clock.now()));
    },
  });
  t.after(stop);
  await waitFor('two renewals', 10_000, () => renewed.length >= 2, 5);
  await stop();
  const [r0, r1] = renewed;
  assert.ok(r0 && r1);
  const gap = r1.at - r0.at;
  const left = r0.identity.notAfter.getTime() - r0.at;
  assert.ok(gap >= Math.floor((left * 2) / 3), `second renewal ${gap} ms after the first; expected >= 2/3 of the ${left} ms left`);
  assert.ok(r1.at < r0.identity.notAfter.getTime(), 'still renewed before expiry');
});
