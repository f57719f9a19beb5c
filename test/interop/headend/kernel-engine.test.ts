// SPDX-License-Identifier: UNLICENSED
// The headend on the kernel's L2 engine with two workers, in namespaces (root):
//   site (two units, acme and globex, each a tunnel client playing 192.168.10.20 with the same MAC)
//   --veth-- dc (headend: primary + 2 workers, kernel bridges and vxlan devices, VXLAN 10.98.0.1:4789)
//   --veth-- hv (kernel VTEPs: VNI 100 -> vm1, VNI 200 -> vm2, both 192.168.10.5)
// Each unit reaches its own tenant's VM and only it (identical addressing), the sessions are served by
// different workers, a worker killed with -9 is forked again and its unit comes back, the primary's
// scrape merges the workers', and a SIGTERM leaves an audit log that verifies with every connect and
// disconnect in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { isRoot, kernelVtep, netnsScope } from '../../helpers/netns.js';
import { CLI, REPO, registryDoc, spawnKernelWorkers, writeJson } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki, type Identity } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { skipUnlessCi } from '../../helpers/skip.js';

interface Source {
  child: ChildProcess;
  events: Record<string, unknown>[];
  count(e: string): number;
}

function frameSource(site: string, dev: Identity, ca: string, children: ChildProcess[]): Source {
  const child = spawn(
    'ip',
    ['netns', 'exec', site, process.execPath, '--import', 'tsx', join(REPO, 'test/interop/headend/frame-source.ts')],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: {
        ...process.env,
        CK_HEADEND_URL: 'tls://10.99.0.1:8443',
        CK_KEY: dev.keyFile,
        CK_CERT: dev.certFile,
        CK_CA: ca,
        CK_PINGS: '500',
      },
    },
  );
  children.push(child);
  const events: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  return { child, events, count: (e) => events.filter((x) => x['event'] === e).length };
}

test(
  'kernel L2 engine with two workers: isolation with identical addressing, worker loss, merged metrics, clean stop',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces and TAP devices') },
  async (t) => {
    const scope = netnsScope(t, 'cke');
    const site = await scope.ns('site');
    const dc = await scope.ns('dc');
    const hv = await scope.ns('hv');
    const vm1 = await scope.ns('vm1');
    const vm2 = await scope.ns('vm2');
    const n = (r: string): string => scope.ifname(r);
    await ipIn(site, 'link', 'add', n('sd'), 'type', 'veth', 'peer', 'name', n('ds'), 'netns', dc);
    await ipIn(dc, 'link', 'add', n('dh'), 'type', 'veth', 'peer', 'name', n('hd'), 'netns', hv);
    await ipIn(hv, 'link', 'add', n('h1'), 'type', 'veth', 'peer', 'name', n('v1'), 'netns', vm1);
    await ipIn(hv, 'link', 'add', n('h2'), 'type', 'veth', 'peer', 'name', n('v2'), 'netns', vm2);
    await ipIn(site, 'addr', 'add', '10.99.0.2/24', 'dev', n('sd'));
    await ipIn(dc, 'addr', 'add', '10.99.0.1/24', 'dev', n('ds'));
    await ipIn(dc, 'addr', 'add', '10.98.0.1/24', 'dev', n('dh'));
    await ipIn(hv, 'addr', 'add', '10.98.0.2/24', 'dev', n('hd'));
    for (const [ns, dev] of [
      [dc, 'dh'],
      [hv, 'hd'],
    ] as const)
      await ipIn(ns, 'link', 'set', n(dev), 'mtu', '1550');
    for (const [ns, dev] of [
      [site, 'sd'],
      [dc, 'ds'],
      [dc, 'dh'],
      [hv, 'hd'],
      [hv, 'h1'],
      [hv, 'h2'],
      [vm1, 'v1'],
      [vm2, 'v2'],
    ] as const)
      await ipIn(ns, 'link', 'set', n(dev), 'up');
    await kernelVtep(hv, { vni: 100, local: '10.98.0.2', remote: '10.98.0.1', dev: n('hd'), bridge: 'br100', ports: [n('h1')] });
    await kernelVtep(hv, { vni: 200, local: '10.98.0.2', remote: '10.98.0.1', dev: n('hd'), bridge: 'br200', ports: [n('h2')] });
    await ipIn(vm1, 'addr', 'add', '192.168.10.5/24', 'dev', n('v1'));
    await ipIn(vm2, 'addr', 'add', '192.168.10.5/24', 'dev', n('v2'));
    const macOf = async (ns: string, dev: string): Promise<string> =>
      (JSON.parse((await nsExec(ns, 'ip', ['-j', 'link', 'show', dev])).stdout) as { address: string }[])[0]?.address ?? '';
    const mac1 = await macOf(vm1, n('v1'));
    const mac2 = await macOf(vm2, n('v2'));

    const d = tempDir(t, 'ck-kl2-', true);
    const pki = await createTestPki(d.dir, { serverIps: ['10.99.0.1'] });
    const acme = await pki.client('CN-0001');
    const globex = await pki.client('CN-0002');
    writeJson(
      d.path('registry.json'),
      registryDoc(
        { acme: { vni: 100, vteps: ['10.98.0.2'] }, globex: { vni: 200, vteps: ['10.98.0.2'] } },
        { 'CN-0001': 'acme', 'CN-0002': 'globex' },
      ),
    );
    const { headend, children } = await spawnKernelWorkers(
      t,
      d,
      pki,
      dc,
      { listenHost: '10.99.0.1', listenPort: 8443, vxlanAddress: '10.98.0.1', vxlanPort: 4789, vtepPort: 4789, metricsPort: 9100 },
      () => scope.cleanup(),
    );
    const links = async (): Promise<string[]> =>
      (JSON.parse((await nsExec(dc, 'ip', ['-d', '-j', 'link', 'show'])).stdout) as { ifname: string; master?: string }[]).map(
        (l) => `${l.ifname}${l.master ? `@${l.master}` : ''}`,
      );
    const before = await links();
    assert.ok(before.includes('ckx100@ckb100') && before.includes('ckx200@ckb200'), `segment devices: ${before.join(' ')}`);

    const a = frameSource(site, acme, pki.dcCa.file, children);
    await waitFor('acme unit pings its VM', 20_000, () => a.count('echo-reply') >= 3).catch(async (e: unknown) => {
      // What a reader needs when it fails: the unit's last events and the kernel's view of the ports.
      throw new Error(`${String(e)}\nunit: ${JSON.stringify(a.events.slice(-5))}\n${(await nsExec(dc, 'bridge', ['-d', 'link'])).stdout}`);
    });
    const b = frameSource(site, globex, pki.dcCa.file, children);
    await waitFor('globex unit pings its VM', 20_000, () => b.count('echo-reply') >= 3);
    // Same IP and MAC on both sides: each unit resolved its own tenant's VM.
    const learned = (s: Source): string => String(s.events.find((e) => e['event'] === 'arp-learned')?.['mac'] ?? '');
    assert.equal(learned(a).padStart(12, '0'), mac1.replaceAll(':', ''));
    assert.equal(learned(b).padStart(12, '0'), mac2.replaceAll(':', ''));
    for (const [vm, dev] of [
      [vm1, 'v1'],
      [vm2, 'v2'],
    ] as const) {
      await ipIn(vm, 'neigh', 'flush', 'dev', n(dev));
      const ping = await nsExec(vm, 'ping', ['-c', '3', '-i', '0.3', '-W', '2', '192.168.10.20'], { allowFailure: true });
      assert.match(ping.stdout, /3 received/, `${vm}: ${ping.stdout}${ping.stderr}`);
    }
    // Each session a port of its own segment's bridge; split horizon by isolation.
    const ports = (await links()).filter((l) => /^ck\dt/.test(l));
    assert.equal(ports.length, 2, ports.join(' '));
    assert.ok(ports.some((p) => p.endsWith('@ckb100')) && ports.some((p) => p.endsWith('@ckb200')), ports.join(' '));
    const isolated = await nsExec(dc, 'bridge', ['-d', 'link', 'show']);
    assert.equal((isolated.stdout.match(/isolated on/g) ?? []).length, 2, isolated.stdout);
    const upLines = headend.lines.filter((l) => l['msg'] === 'session up');
    // Workers accept from one shared socket: which one takes a connection is the kernel's choice.
    const workers = new Set(upLines.map((l) => l['worker']));
    assert.ok(
      [...workers].every((w) => w === 1 || w === 2),
      `sessions served by workers ${[...workers].join(',')}`,
    );
    assert.equal(headend.lines.filter((l) => l['msg'] === 'headend worker listening').length, 2);
    t.diagnostic(`sessions on workers ${upLines.map((l) => `${String(l['serial'])}:${String(l['worker'])}`).join(' ')}`);

    // The scrape: one text, each worker's series labelled, HELP once per family.
    const scrape = (await nsExec(dc, 'curl', ['-s', 'http://10.99.0.1:9100/metrics'])).stdout;
    assert.match(scrape, /connector_headend_workers 2/);
    assert.match(scrape, /connector_headend_sessions\{worker="\d",tenant="acme"\} 1/);
    assert.match(scrape, /connector_headend_sessions\{worker="\d",tenant="globex"\} 1/);
    assert.equal((scrape.match(/# HELP connector_headend_sessions /g) ?? []).length, 1);
    const listed = JSON.parse((await nsExec(dc, 'curl', ['-s', 'http://10.99.0.1:9100/sessions'])).stdout) as {
      sessions: { serial: string }[];
    };
    assert.deepEqual(listed.sessions.map((s) => s.serial).sort(), ['CN-0001', 'CN-0002']);

    // kill -9 the worker serving acme: it is forked again, the unit reconnects, its pings resume.
    const acmeWorker = Number(upLines.find((l) => l['serial'] === 'CN-0001')?.['worker']);
    const pids = spawnSync('pgrep', ['-P', String(headend.child.pid)], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .map(Number);
    const workerPid = headend.lines.find((l) => l['msg'] === 'headend worker listening' && l['worker'] === acmeWorker)?.['pid'];
    assert.ok(typeof workerPid === 'number' && pids.includes(workerPid), `worker ${acmeWorker} pid ${String(workerPid)}`);
    const victim = workerPid;
    process.kill(victim, 'SIGKILL');
    await headend.waitForLine((l) => l['msg'] === 'headend worker died; forking it again' && l['worker'] === acmeWorker, 10_000);
    const replies = a.count('echo-reply');
    const repliesB = b.count('echo-reply');
    await waitFor('acme pings again after its worker died', 20_000, () => a.count('echo-reply') >= replies + 3);
    await waitFor('globex pings on', 20_000, () => b.count('echo-reply') >= repliesB + 3);
    // The dead worker's port was removed by its successor: one port per session, no more.
    await waitFor('one port per live session', 10_000, async () => (await links()).filter((l) => /^ck\dt/.test(l)).length === 2);

    // A registry change touches only the segments it names: a tenant added, a VTEP added to acme's
    // segment, then the new tenant removed; acme's session and its pings carry on throughout.
    const reRegister = async (tenants: Parameters<typeof registryDoc>[0]): Promise<void> => {
      writeJson(d.path('registry.json'), registryDoc(tenants, { 'CN-0001': 'acme', 'CN-0002': 'globex' }));
      headend.child.kill('SIGHUP');
    };
    const acmeStates = a.count('state');
    const vxlanFdb = async (dev: string): Promise<string> =>
      (await nsExec(dc, 'bridge', ['fdb', 'show', 'dev', dev], { allowFailure: true })).stdout;
    await reRegister({
      acme: { vni: 100, vteps: ['10.98.0.2', '10.98.0.3'] },
      globex: { vni: 200, vteps: ['10.98.0.2'] },
      initech: { vni: 300, vteps: ['10.98.0.2'] },
    });
    await waitFor('the new tenant has its segment devices', 10_000, async () => (await links()).includes('ckx300@ckb300'));
    await waitFor('acme has its second VTEP', 10_000, async () => (await vxlanFdb('ckx100')).includes('dst 10.98.0.3'));
    await reRegister({ acme: { vni: 100, vteps: ['10.98.0.2'] }, globex: { vni: 200, vteps: ['10.98.0.2'] } });
    await waitFor('the removed tenant has no devices left', 10_000, async () => !(await links()).some((l) => l.startsWith('ckx300')));
    await waitFor('acme is back to one VTEP', 10_000, async () => !(await vxlanFdb('ckx100')).includes('dst 10.98.0.3'));
    const acmeReplies = a.count('echo-reply');
    await waitFor('acme pings on across the changes', 10_000, () => a.count('echo-reply') >= acmeReplies + 3);
    assert.equal(
      a.count('state'),
      acmeStates,
      `acme's session stayed up: ${JSON.stringify(a.events.filter((e) => e['event'] === 'state'))}`,
    );

    // SIGTERM: every session hears a bye, the primary exits, the audit chain verifies.
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
    await waitFor(
      'session ports gone with their sessions',
      10_000,
      async () => (await links()).filter((l) => /^ck\dt/.test(l)).length === 0,
    );
    const t0 = Date.now();
    await headend.kill('SIGTERM');
    t.diagnostic(`SIGTERM to exit: ${Date.now() - t0} ms`);
    assert.equal(headend.child.exitCode, 0);
    const verify = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'audit', 'verify', '--log', d.path('audit.jsonl')], {
      cwd: REPO,
      encoding: 'utf8',
    });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const records = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'audit', 'export', '--log', d.path('audit.jsonl'), '--format', 'jsonl'],
      {
        cwd: REPO,
        encoding: 'utf8',
      },
    )
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; serial?: string });
    // One start recorded for the headend, not one per worker (the re-forked worker's start neither).
    assert.equal(records.filter((r) => r.event === 'headend-start').length, 1);
    for (const serial of ['CN-0001', 'CN-0002']) {
      assert.ok(records.filter((r) => r.event === 'connect' && r.serial === serial).length >= 1, `connect ${serial}`);
      assert.ok(records.filter((r) => r.event === 'disconnect' && r.serial === serial).length >= 1, `disconnect ${serial}`);
    }
    // The segment devices stay for the next start; the restart finds them and keeps them.
    assert.ok((await links()).includes('ckx100@ckb100'));
  },
);
