// SPDX-License-Identifier: UNLICENSED
// The lab itself, before any of our data-path code: the CLI, the wiring (router NAT, CGNAT, routes) and
// the hypervisor's kernel VXLAN VTEPs, checked with a kernel VTEP standing in for the headend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../src/shared/exec.js';
import { addNetns, addVeth, ipIn, isAlive, netnsExists, spawnInNetns } from '../../src/lab/adapters/netns.js';
import { projectRoot } from '../../src/lab/adapters/programs.js';
import { PY_PING } from '../../src/lab/core/py-tools.js';
import { readLabState, statePath } from '../../src/lab/adapters/state.js';
import { DC, SITE, TENANT_VNI, planLab } from '../../src/lab/core/topology.js';
import { labSkipReason, openLab, pcapLines, type LabHandle } from './lab-fixture.js';
import { tempDir } from '../helpers/tmp.js';
import { skipUnlessCi } from '../helpers/skip.js';

const skip = skipUnlessCi(labSkipReason()) || undefined;
const ROOT = projectRoot();

function cli(args: string[]) {
  return exec(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/connector.ts'), 'lab', ...args], {
    cwd: ROOT,
    allowFailure: true,
    timeoutMs: 60_000,
  });
}

test('lab CLI: up, status, exec, down, and down again', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-lab-cli-'));
  t.after(async () => {
    await cli(['down', '--dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const up = await cli(['up', '--dir', dir, '--no-headend']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /lan-host .*192\.168\.10\.20/);
  assert.match(up.stdout, /lab exec .*lan-host -- ping/);

  const st = await cli(['status', '--dir', dir, '--json']);
  assert.equal(st.code, 0, st.stderr);
  const report = JSON.parse(st.stdout) as { prefix: string; nodes: { node: string; exists: boolean; addrs: string[] }[] };
  assert.equal(report.nodes.length, planLab().nodes.length);
  assert.ok(report.nodes.every((n) => n.exists));
  assert.deepEqual(report.nodes.find((n) => n.node === 'vm-b')?.addrs, [`eth0 ${SITE.vm.ip}/24`]);

  const addr = await cli(['exec', '--dir', dir, 'lan-b', '--', 'ip', '-br', 'link', 'show', 'eth0']);
  assert.equal(addr.code, 0, addr.stderr);
  assert.match(addr.stdout, new RegExp(SITE.lanHost.mac));
  assert.equal((await cli(['exec', '--dir', dir, 'lan-host', '--', 'false'])).code, 1, 'exit code of CMD is passed through');
  const bad = await cli(['exec', '--dir', dir, 'nowhere', '--', 'true']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no node "nowhere".*lan-host/);
  assert.equal((await cli(['exec', '--dir', dir, 'lan-host'])).code, 2, 'missing -- CMD is a usage error');

  // restart starts a process that was not running (built with --no-headend) and names the valid ones
  const rs = await cli(['restart', '--dir', dir, 'est']);
  assert.equal(rs.code, 0, rs.stderr);
  assert.match(rs.stdout, /est restarted, pid \d+/);
  const est = readLabState(dir).processes.find((p) => p.name === 'est');
  assert.ok(est && isAlive(est.pid), 'the EST server runs after restart');
  const rsBad = await cli(['restart', '--dir', dir, 'nothing']);
  assert.equal(rsBad.code, 2);
  assert.match(rsBad.stderr, /no process "nothing".*agent-a/);

  const down = await cli(['down', '--dir', dir]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`removed ${report.nodes.length} namespaces`));
  assert.match(down.stdout, /stopped est/);
  assert.equal(netnsExists(`${report.prefix}-lan-host`), false);
  const again = await cli(['down', '--dir', dir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no lab state .*--prefix/);
});

test('lab down cleans up after a crash halfway through lab up', { skip }, async (t) => {
  const dir = tempDir(t, 'ck-lab-crash-').dir;
  const up = await cli(['up', '--dir', dir, '--no-headend']);
  assert.equal(up.code, 0, up.stderr);
  const state = readLabState(dir);
  // As a crash would leave it: still "building", an extra namespace, a stray process recorded in it.
  const strayNs = `${state.prefix}-stray`;
  await addNetns(strayNs);
  const log = join(dir, 'stray.log');
  const pid = spawnInNetns(strayNs, 'sleep', ['300'], { logFile: log });
  writeFileSync(
    statePath(dir),
    JSON.stringify({ ...state, phase: 'building', processes: [{ name: 'stray', node: 'dc', pid, cmd: ['sleep', '300'], cwd: '/', log }] }),
  );
  const down = await cli(['down', '--dir', dir]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(netnsExists(strayNs), false);
  assert.equal(netnsExists(`${state.prefix}-dc`), false);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(isAlive(pid), false, 'the recorded process is gone');
  assert.throws(() => readFileSync(statePath(dir)), /ENOENT/);
});

describe('one-port wiring and the kernel VTEPs', { skip }, () => {
  let lab: LabHandle;
  before(async () => {
    lab = await openLab(undefined);
  });
  after(() => lab?.down());

  test('the LAN reaches the DC through the customer router and the CGNAT, never the other way', async () => {
    const cap = await lab.capture('dc', 'inet', 'icmp');
    const r = await lab.ping('lan-host', DC.publicAddr, { count: 2 });
    assert.equal(r.received, 2);
    const fromConnector = await lab.ping('connector', DC.publicAddr, { count: 1 });
    assert.equal(fromConnector.received, 1);
    const lines = await pcapLines(await cap.stop(), 'icmp[icmptype] == icmp-echo');
    assert.ok(lines.length >= 3);
    // Double NAT: the DC only ever sees the ISP's address.
    assert.ok(
      lines.every((l) => l.includes(`${DC.ispAddr} > ${DC.publicAddr}`)),
      lines.join('\n'),
    );
    const route = await lab.run('connector', 'ip', ['route', 'get', DC.publicAddr]);
    assert.match(route.stdout, new RegExp(`via ${SITE.router.ip} dev br-lan`), 'one-port: the tunnel leaves through the LAN');
    const inbound = await lab.ping('dc', '100.64.1.2', { count: 1, timeoutS: 0.3 });
    assert.equal(inbound.received, 0, 'nothing in the DC can open a path into the site');
  });

  test("a kernel VTEP in dc reaches tenant A's VM over the hv VXLAN, and only tenant A's", async () => {
    // A probe host behind a kernel vxlan in dc, on tenant A's VNI: what the headend will do in userspace.
    const probe = `${lab.prefix}-probe`;
    await addNetns(probe);
    const dc = lab.ns('dc');
    await ipIn(
      dc,
      'link',
      'add',
      'vx-test',
      'type',
      'vxlan',
      'id',
      String(TENANT_VNI.a),
      'local',
      DC.fabricAddr,
      'remote',
      DC.hvFabricAddr,
      'dstport',
      String(DC.vxlanPort),
      'dev',
      'fabric',
    );
    await ipIn(dc, 'link', 'add', 'br-test', 'type', 'bridge');
    await addVeth({ ns: dc, ifname: 'p-probe' }, { ns: probe, ifname: 'eth0' });
    for (const i of ['vx-test', 'p-probe']) await ipIn(dc, 'link', 'set', i, 'master', 'br-test', 'up');
    await ipIn(dc, 'link', 'set', 'br-test', 'up');
    await ipIn(probe, 'addr', 'add', '192.168.10.99/24', 'dev', 'eth0');
    await ipIn(probe, 'link', 'set', 'eth0', 'up');

    // Tenants share MACs and, with IPv6 on, B's VM has chatter of its own; the probe's MAC is unique, so
    // any frame to or from it on B's VM is VNI 1001 traffic that crossed.
    const probeMac = /link\/ether ([0-9a-f:]{17})/.exec((await exec('ip', ['-n', probe, '-o', 'link', 'show', 'eth0'])).stdout)?.[1];
    assert.ok(probeMac, 'the probe has a MAC');
    const capB = await lab.capture('vm-b', 'eth0', `ether host ${probeMac} or (icmp and icmp[8:2] = 0xabab)`);
    const capFabric = await lab.capture('hv', 'fabric', 'udp port 4789');
    const viaProbe = await exec('ip', ['netns', 'exec', probe, 'python3', '-c', PY_PING, SITE.vm.ip, '3', '1472', '1', '0.2', '1', 'ab']);
    const res = JSON.parse(viaProbe.stdout) as { received: number };
    assert.equal(res.received, 3, 'full-size DF pings cross the kernel VXLAN (fabric MTU 9000)');
    const linesB = await pcapLines(await capB.stop());
    assert.deepEqual(linesB, [], "tenant B's VM sees nothing of VNI 1001");
    const tshark = await exec(
      'tshark',
      // The probe's pings and their replies (tenant B's own IPv6 chatter may cross the fabric meanwhile).
      [
        '-r',
        await capFabric.stop(),
        '-d',
        'udp.port==4789,vxlan',
        '-Y',
        'icmp',
        '-T',
        'fields',
        '-e',
        'vxlan.vni',
        '-e',
        'eth.src',
        '-e',
        'icmp.type',
      ],
      { allowFailure: true },
    );
    const vnis = new Set(
      tshark.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]),
    );
    assert.deepEqual([...vnis], [String(TENANT_VNI.a)]);
  });
});

test(
  'lab up without root says so and creates nothing',
  { skip: skip ?? (skipUnlessCi(!existsSync('/usr/bin/setpriv') && 'needs setpriv') || undefined) },
  async (t) => {
    const dir = join(tmpdir(), `ck-lab-nonroot-${process.pid}`);
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const r = await exec(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '--import',
        'tsx',
        join(ROOT, 'src/cli/connector.ts'),
        'lab',
        'up',
        '--dir',
        dir,
      ],
      { cwd: ROOT, allowFailure: true, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs root: run it with sudo.*CK_ERR_LAB/);
    assert.equal(existsSync(dir), false);
  },
);

const skipTwoPort = skipUnlessCi(labSkipReason({ headend: true, agents: true }));

test('two-port wiring: the connector has its own WAN leg to the ISP and the tunnel uses it', { skip: skipTwoPort }, async (t) => {
  const lab = await openLab(t, { wiring: 'two-port', headend: true, agents: true });
  const route = await lab.run('connector-b', 'ip', ['route', 'get', DC.publicAddr]);
  assert.match(route.stdout, /via 100\.64\.4\.1 dev eth0/);
  assert.equal((await lab.ping('connector', DC.publicAddr, { count: 1 })).received, 1);
  assert.equal((await lab.ping('lan-host', DC.publicAddr, { count: 1 })).received, 1, 'the LAN still has its router');
  await lab.waitPing('lan-host', SITE.vm.ip, 30_000);
  assert.equal((await lab.ping('vm-b', SITE.lanHost.ip, { count: 2 })).received, 2);
  const audit = readFileSync(lab.state().files['auditLog'] ?? '', 'utf8');
  assert.match(audit, new RegExp(`"remote":"${DC.ispAddr.replace(/\./g, '\\.')}:`), 'sessions arrive through the CGNAT');
  const conns = await lab.run('connector', 'ss', ['-Htn', 'state', 'established', 'dst', `${DC.publicAddr}:${DC.tlsPort}`]);
  assert.match(conns.stdout, /100\.64\.2\.2:/, 'the tunnel leaves through eth0 (100.64.2.2), not the LAN');
  assert.equal((await lab.run('connector', 'ss', ['-Hlntu'])).stdout.trim(), '', 'nothing listens on the WAN leg');
});
