// SPDX-License-Identifier: UNLICENSED
// SIGTERM to a headend of two workers on the kernel's L2 engine with 1,000 sessions up (root, one
// namespace): every device hears a bye with a retry-after window, peers that never read their bye do
// not hold the stop, the process exits 0, and the audit log holds every session's disconnect (each
// worker sends its records to the primary over IPC: none may be lost to the worker's exit) and verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ipIn } from '../../../src/lab/adapters/netns.js';
import { exportPrivateKeyPem, generateKeyPair, issueCertificate } from '../../../src/shared/pki/x509.js';
import { isRoot, netnsScope } from '../../helpers/netns.js';
import { CLI, REPO, registryDoc, spawnKernelWorkers, writeJson } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { skipUnlessCi } from '../../helpers/skip.js';

const N = 1_000;
const PAUSED = 20;
const DAY_MS = 86_400_000;

test(
  'SIGTERM with 1,000 sessions on two workers: byes with a retry window, deaf peers do not hold it, every disconnect audited',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces and TAP devices'), timeout: 180_000 },
  async (t) => {
    const scope = netnsScope(t, 'ckw');
    const dc = await scope.ns('dc');
    // The fabric side only needs an address for the segments' vxlan devices: a veth pair inside dc.
    await ipIn(dc, 'link', 'add', scope.ifname('f0'), 'type', 'veth', 'peer', 'name', scope.ifname('f1'));
    await ipIn(dc, 'addr', 'add', '10.98.0.1/24', 'dev', scope.ifname('f0'));
    for (const dev of ['f0', 'f1']) await ipIn(dc, 'link', 'set', scope.ifname(dev), 'up');

    const d = tempDir(t, 'ck-wexit-', true);
    const pki = await createTestPki(d.dir);
    // Distinct certificates (serials) on one key pair: issuing 1,000 is quick, generating 1,000 keys is not.
    const keys = await generateKeyPair();
    const key = await exportPrivateKeyPem(keys.privateKey);
    const at = Date.now();
    const devices: { cn: string; cert: string; key: string }[] = [];
    for (let i = 0; i < N; i++) {
      const cn = `W-${String(i).padStart(4, '0')}`;
      const cert = await issueCertificate({
        issuer: pki.deviceCa.issuer,
        publicKey: keys.publicKey,
        subject: { cn, serialNumber: cn },
        profile: 'client',
        notBefore: new Date(at - DAY_MS),
        notAfter: new Date(at + 7 * DAY_MS),
      });
      devices.push({ cn, cert: cert.toString('pem') + '\n', key });
    }
    writeFileSync(d.path('devices.json'), JSON.stringify(devices));
    // Ten tenants, so both workers carry sessions of several segments.
    const tenants = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, { vni: 100 + i }]));
    writeJson(d.path('registry.json'), registryDoc(tenants, Object.fromEntries(devices.map((x, i) => [x.cn, `t${i % 10}`]))));
    const { headend, children } = await spawnKernelWorkers(
      t,
      d,
      pki,
      dc,
      { listenPort: 8443, vxlanAddress: '10.98.0.1', vxlanPort: 4789, vtepPort: 4789, metricsPort: null },
      () => scope.cleanup(),
    );

    const fleet = spawn('ip', ['netns', 'exec', dc, process.execPath, '--import', 'tsx', join(REPO, 'test/interop/headend/bye-fleet.ts')], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {
        ...process.env,
        CK_HOST: '127.0.0.1',
        CK_PORT: '8443',
        CK_CA: pki.dcCa.file,
        CK_DEVICES: d.path('devices.json'),
        CK_PAUSED: String(PAUSED),
      },
    });
    children.push(fleet);
    const events: Record<string, unknown>[] = [];
    createInterface({ input: fleet.stdout! }).on('line', (l) => events.push(JSON.parse(l) as Record<string, unknown>));
    const fleetExit = new Promise<number | null>((r) => fleet.once('exit', (code) => r(code)));
    await Promise.race([
      waitFor(`${N} sessions up`, 120_000, () => events.find((e) => e['event'] === 'up')),
      fleetExit.then((code) => assert.fail(`the fleet exited (${code}) before all were up`)),
    ]);
    const workers = new Set(headend.lines.filter((l) => l['msg'] === 'session up').map((l) => l['worker']));
    assert.deepEqual([...workers].sort(), [1, 2], 'both workers carry sessions');

    fleet.stdin!.write('alive\n');
    const alive = await waitFor('the fleet counts its connections', 10_000, () => events.find((e) => e['event'] === 'alive'));
    assert.equal(alive['n'], N, 'every session still up when the headend is told to stop');
    const t0 = Date.now();
    await headend.kill('SIGTERM');
    t.diagnostic(`SIGTERM to exit with ${N} sessions on 2 workers: ${Date.now() - t0} ms`);
    assert.equal(headend.child.exitCode, 0);
    const stopped = headend.lines.filter((l) => l['msg'] === 'headend worker stopping').length;
    assert.equal(stopped, 2, 'each worker stopped on its primary word');

    fleet.stdin!.write('report\n');
    assert.equal(await fleetExit, 0);
    const report = events.find((e) => e['event'] === 'report') ?? {};
    t.diagnostic(`connections as the devices saw them end: ${JSON.stringify(report['errors'])}`);
    assert.equal(report['n'], N);
    assert.equal(report['byes'], N, `every device heard its bye: ${JSON.stringify(report)}`);
    assert.equal(report['pausedWithBye'], PAUSED, 'the deaf peers got theirs too, read later');
    assert.equal(report['withRetryAfter'], N, 'each bye spreads the return');
    assert.deepEqual(report['byeReasons'], ['headend-shutdown']);
    assert.equal(report['closed'], N, 'the exit closed every connection');

    const cli = (...args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, ['--import', 'tsx', CLI, 'audit', ...args], { cwd: REPO, encoding: 'utf8' });
    const verify = cli('verify', '--log', d.path('audit.jsonl'));
    assert.equal(verify.status, 0, String(verify.stdout) + String(verify.stderr));
    const records = String(cli('export', '--log', d.path('audit.jsonl'), '--format', 'jsonl').stdout)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; serial?: string; reason?: string });
    const disconnects = records.filter((r) => r.event === 'disconnect');
    assert.equal(new Set(disconnects.map((r) => r.serial)).size, N, `disconnects audited: ${disconnects.length} of ${N}`);
    assert.ok(disconnects.every((r) => r.reason === 'headend-shutdown'));
    assert.equal(records.at(-1)?.event, 'checkpoint', 'the log ends with a signed checkpoint');
  },
);
