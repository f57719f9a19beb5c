// SPDX-License-Identifier: UNLICENSED
// The device gate: corrupted artifact, bad signature, wrong board, unsigned manifest, older version are
// refused and the device tree is bit-for-bit unchanged; either key slot verifies; an OS release runs
// `sysupgrade -T` then `sysupgrade` through the configured (recording stand-in) command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../src/shared/log.js';
import { encodeUsignSignature, generateUsignKeyPair, signUsign } from '../../../src/shared/usign/index.js';
import { sysupgradeRunner } from '../../../src/agent/adapters/ota/sysupgrade.js';
import type { JobDocument } from '../../../src/shared/ota/protocol.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { agentArtifact, buildRelease, type BuiltRelease, serveTestArtifacts } from './helpers/release.js';
import { createTestDevice, FIRST_VERSION, hashDeviceTree } from './helpers/device.js';

const UNSIGNED = null;
const job = (id: string, rel: BuiltRelease, signature: string | null = rel.signature): JobDocument => ({
  jobId: id,
  rolloutId: id,
  manifest: rel.manifestBytes.toString('base64'),
  ...(signature !== null ? { signature } : {}),
  issuedAt: new Date().toISOString(),
});

async function env(t: { after(fn: () => void | Promise<void>): void }) {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true });
  const dir = tempDir(t, 'ck-ota-ref-').dir;
  const server = await serveTestArtifacts(t, pki, dir);
  const oldKey = generateUsignKeyPair();
  const newKey = generateUsignKeyPair();
  return { pki, dir, server, oldKey, newKey };
}

test('bad releases are refused before anything on the device changes', async (t) => {
  const e = await env(t);
  const dev = await createTestDevice(t, { serial: 'R3S-0009', keys: [e.oldKey.publicKey, e.newKey.publicKey], artifactCa: e.pki.dcCa.pem });
  const before = hashDeviceTree(dev.root);
  const good = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.1.0',
    key: e.oldKey.secretKey,
    content: agentArtifact('1.1.0', true),
  });

  // Corrupted artifact: the server holds different bytes than the signed manifest describes.
  const corrupt = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.1.1',
    key: e.oldKey.secretKey,
    content: agentArtifact('1.1.1', true),
  });
  const bytes = readFileSync(corrupt.artifactFile);
  bytes[10] = (bytes[10] ?? 0) ^ 0xff;
  writeFileSync(corrupt.artifactFile, bytes);
  // Bad signature: a valid signature over different bytes; and one by a key the device does not trust.
  const forged = encodeUsignSignature(signUsign(Buffer.from('something else'), e.oldKey.secretKey));
  const stranger = generateUsignKeyPair();
  const foreign = encodeUsignSignature(signUsign(good.manifestBytes, stranger.secretKey));
  const wrongBoard = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.1.2',
    key: e.oldKey.secretKey,
    board: 'friendlyarm,nanopi-r4s',
    content: agentArtifact('1.1.2', true),
  });
  const older = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '0.9.0',
    key: e.oldKey.secretKey,
    content: agentArtifact('0.9.0', true),
  });

  const cases: [string, JobDocument, string][] = [
    ['corrupted artifact', job('j-corrupt', corrupt), 'artifact-mismatch'],
    ['forged signature', job('j-forged', good, forged), 'bad-signature'],
    ['untrusted key', job('j-foreign', good, foreign), 'bad-signature'],
    ['wrong board', job('j-board', wrongBoard), 'wrong-board'],
    ['unsigned manifest', job('j-unsigned', good, UNSIGNED), 'unsigned'],
    ['older version', job('j-older', older), 'downgrade'],
  ];
  for (const [name, doc, reason] of cases) {
    const state = await dev.updater.handleJob(doc);
    assert.equal(state, 'rejected', name);
    const last = dev.reports.at(-1);
    assert.equal(last?.state, 'rejected', name);
    assert.equal(last?.reason, reason, name);
    assert.equal(hashDeviceTree(dev.root), before, `${name}: device tree unchanged`);
    assert.equal(await dev.updater.runningVersion(), FIRST_VERSION);
  }
  // Only the corrupted artifact was ever downloaded (signature and board are checked first).
  assert.deepEqual(
    dev.reports
      .filter((r) => r.state === 'downloading')
      .map((r) => r.jobId)
      .filter((v, i, a) => a.indexOf(v) === i),
    ['j-corrupt'],
  );
  assert.equal(dev.restarts.length, 0);

  // A redelivered finished job is not re-run.
  assert.equal(await dev.updater.handleJob(job('j-board', wrongBoard)), 'rejected');

  // Key rotation: a release signed with the second slot's key installs.
  const rotated = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.2.0',
    key: e.newKey.secretKey,
    content: agentArtifact('1.2.0', true),
  });
  assert.equal(await dev.updater.handleJob(job('j-rotated', rotated)), 'succeeded');
  assert.equal(await dev.updater.runningVersion(), '1.2.0');
  assert.notEqual(hashDeviceTree(dev.root), before);

  // The same signed release replayed under a new job id: nothing is reinstalled, nothing restarts; the
  // job reports success (the unit runs the version) with the reason. With "force", it reinstalls.
  const afterInstall = hashDeviceTree(dev.root);
  const restarts = dev.restarts.length;
  assert.equal(await dev.updater.handleJob(job('j-replayed', rotated)), 'succeeded');
  assert.equal(dev.reports.at(-1)?.reason, 'already-installed');
  assert.equal(hashDeviceTree(dev.root), afterInstall, 'nothing reinstalled');
  assert.equal(dev.restarts.length, restarts, 'the agent was not restarted');
  assert.equal(await dev.updater.handleJob({ ...job('j-forced', rotated), force: true }), 'succeeded');
  assert.equal(dev.restarts.length, restarts + 1, 'a forced job reinstalls and restarts');
});

test('an OS release runs sysupgrade -T, then sysupgrade, through the configured command', async (t) => {
  const e = await env(t);
  const log = join(e.dir, 'sysupgrade-calls.log');
  const standIn = join(e.dir, 'sysupgrade-recording-stand-in.sh');
  writeFileSync(
    standIn,
    `#!/bin/sh\n# Recording stand-in for /sbin/sysupgrade: logs its arguments, checks the image exists, changes nothing.\necho "$@" >> '${log}'\nfor a in "$@"; do last="$a"; done\n[ -f "$last" ]\n`,
  );
  chmodSync(standIn, 0o755);
  const dev = await createTestDevice(t, {
    serial: 'R3S-0010',
    keys: [e.oldKey.publicKey],
    artifactCa: e.pki.dcCa.pem,
    sysupgrade: sysupgradeRunner(standIn, silentLogger),
  });
  const image = Buffer.alloc(64 * 1024, 0x5a);
  const rel = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.5.0',
    key: e.oldKey.secretKey,
    kind: 'sysupgrade',
    content: image,
  });
  assert.equal(await dev.updater.handleJob(job('j-os', rel)), 'rebooting');
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(calls.length, 2);
  assert.match(calls[0] ?? '', /^-T \S+openwrt-1\.5\.0-sysupgrade\.img\.gz\.part$/);
  assert.match(calls[1] ?? '', /^\S+openwrt-1\.5\.0-sysupgrade\.img\.gz\.part$/);
  assert.equal(dev.reports.at(-1)?.state, 'rebooting');
  // After the (simulated) reboot the updater starts again and confirms.
  await dev.updater.resume();
  assert.equal(dev.reports.at(-1)?.state, 'succeeded');

  // A failing dry run stops before the flash.
  writeFileSync(standIn, `#!/bin/sh\necho "$@" >> '${log}'\n[ "$1" != "-T" ]\n`);
  const rel2 = buildRelease({
    dir: e.dir,
    baseUrl: e.server.url,
    version: '1.6.0',
    key: e.oldKey.secretKey,
    kind: 'sysupgrade',
    content: Buffer.alloc(1024, 1),
  });
  assert.equal(await dev.updater.handleJob(job('j-os2', rel2)), 'failed');
  assert.equal(dev.reports.at(-1)?.reason, 'sysupgrade-failed');
  assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 3, 'only the -T call ran');
});
