// SPDX-License-Identifier: UNLICENSED
// Headend <-> Linux kernel VXLAN, in namespaces (root):
//   site (frame-source: agent tunnel client playing 192.168.10.20) --veth-- dc (headend, VXLAN 10.98.0.1:4789)
//   --veth-- hv (kernel vxlan id 100 dstport 4789 remote 10.98.0.1, bridge) --veth-- vm (192.168.10.5)
// ARP and ping both ways between the kernel host and the tunnel-side host; tcpdump on the hv link, and
// tshark decodes the capture as VXLAN (VNI 100, inner ARP/ICMP) with no malformed packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/shared/exec.js';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { isRoot, kernelVtep, netnsScope } from '../../helpers/netns.js';
import { REPO, headendConfigDoc, registryDoc, spawnHeadend, writeJson } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { skipUnlessCi } from '../../helpers/skip.js';

test(
  'kernel vxlan VTEP interoperates with the headend (ARP, ping, tshark)',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces') },
  async (t) => {
    const scope = netnsScope(t, 'ckv');
    const site = await scope.ns('site');
    const dc = await scope.ns('dc');
    const hv = await scope.ns('hv');
    const vm = await scope.ns('vm');
    const [sd, ds, dh, hd, hvm, vmh] = ['sd', 'ds', 'dh', 'hd', 'hb', 'vb'].map((r) => scope.ifname(r)) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    await ipIn(site, 'link', 'add', sd, 'type', 'veth', 'peer', 'name', ds, 'netns', dc);
    await ipIn(dc, 'link', 'add', dh, 'type', 'veth', 'peer', 'name', hd, 'netns', hv);
    await ipIn(hv, 'link', 'add', hvm, 'type', 'veth', 'peer', 'name', vmh, 'netns', vm);
    await ipIn(site, 'addr', 'add', '10.99.0.2/24', 'dev', sd);
    await ipIn(dc, 'addr', 'add', '10.99.0.1/24', 'dev', ds);
    await ipIn(dc, 'addr', 'add', '10.98.0.1/24', 'dev', dh);
    await ipIn(hv, 'addr', 'add', '10.98.0.2/24', 'dev', hd);
    // The fabric hop carries 1514-byte inner frames: 1500 + 50 bytes of VXLAN/UDP/IPv4.
    await ipIn(dc, 'link', 'set', dh, 'mtu', '1550');
    await ipIn(hv, 'link', 'set', hd, 'mtu', '1550');
    for (const [ns, dev] of [
      [site, sd],
      [dc, ds],
      [dc, dh],
      [hv, hd],
      [hv, hvm],
      [vm, vmh],
    ] as const)
      await ipIn(ns, 'link', 'set', dev, 'up');
    await kernelVtep(hv, { vni: 100, local: '10.98.0.2', remote: '10.98.0.1', dev: hd, bridge: 'br0', ports: [hvm] });
    await ipIn(vm, 'addr', 'add', '192.168.10.5/24', 'dev', vmh);

    const d = tempDir(t, 'ck-kvx-', true);
    const pki = await createTestPki(d.dir, { serverIps: ['10.99.0.1'] });
    const dev = await pki.client('CN-0001');
    writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100, vteps: ['10.98.0.2'] } }, { 'CN-0001': 'acme' }));
    writeJson(
      d.path('headend.json'),
      headendConfigDoc(d, pki, { listenHost: '10.99.0.1', listenPort: 8443, vxlanAddress: '10.98.0.1', vxlanPort: 4789, vtepPort: 4789 }),
    );
    const pcap = d.path('hv.pcap');
    const children: ChildProcess[] = [];
    t.after(async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      scope.cleanup();
      d.remove();
    });

    const dump = spawn('ip', ['netns', 'exec', hv, 'tcpdump', '-i', hd, '-U', '-n', '-w', pcap, 'udp port 4789'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(dump);
    await new Promise<void>((resolve) => dump.stderr.on('data', (b: Buffer) => b.toString().includes('listening') && resolve()));

    const headend = await spawnHeadend(d.path('headend.json'), dc);
    children.push(headend.child);
    const src = spawn(
      'ip',
      ['netns', 'exec', site, process.execPath, '--import', 'tsx', join(REPO, 'test/interop/headend/frame-source.ts')],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CK_HEADEND_URL: 'tls://10.99.0.1:8443', CK_KEY: dev.keyFile, CK_CERT: dev.certFile, CK_CA: pki.dcCa.file },
      },
    );
    children.push(src);
    const events: Record<string, unknown>[] = [];
    let srcErr = '';
    src.stderr.on('data', (b: Buffer) => (srcErr += b.toString()));
    let buf = '';
    src.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    const has = (e: string) => events.some((x) => x['event'] === e);
    await waitFor(`tunnel up (${srcErr})`, 20_000, () => has('state') && events.some((x) => x['state'] === 'up'));

    // Tunnel side -> kernel: ARP resolution of 192.168.10.5, then ICMP echo replies from the kernel.
    await waitFor('echo replies from the kernel host', 15_000, () => events.filter((x) => x['event'] === 'echo-reply').length >= 3);
    // Kernel -> tunnel side: the kernel host ARPs for and pings 192.168.10.20 (answered in software). Its
    // neighbour entry was created by our ARP request; flush it so the kernel has to ask.
    await ipIn(vm, 'neigh', 'flush', 'dev', vmh);
    const ping = await nsExec(vm, 'ping', ['-c', '3', '-i', '0.3', '-W', '2', '192.168.10.20'], { allowFailure: true });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, /3 received/);
    assert.ok(has('answered-arp'));
    const neigh = await nsExec(vm, 'ip', ['neigh', 'show', '192.168.10.20']);
    assert.match(neigh.stdout, /02:00:00:00:00:20/);
    // A DF ping with 1472 bytes of payload (a 1514-byte inner frame) crosses the fabric hop unfragmented.
    const big = await nsExec(vm, 'ping', ['-c', '2', '-i', '0.3', '-W', '2', '-M', 'do', '-s', '1472', '192.168.10.20'], {
      allowFailure: true,
    });
    assert.match(big.stdout, /2 received/, big.stdout + big.stderr);

    await new Promise((r) => setTimeout(r, 300));
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    assert.ok(existsSync(pcap));
    const fields = await exec('tshark', [
      '-r',
      pcap,
      '-d',
      'udp.port==4789,vxlan',
      '-T',
      'fields',
      '-e',
      'vxlan.vni',
      '-e',
      'arp.opcode',
      '-e',
      'icmp.type',
      '-e',
      'ip.src',
      '-e',
      'vxlan.flags',
    ]);
    const rows = fields.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.ok(rows.length >= 10, `captured ${rows.length} VXLAN packets`);
    assert.ok(
      rows.every((r) => r[0] === '100'),
      'every packet decodes as VXLAN VNI 100',
    );
    const fromHeadend = rows.filter((r) => r[3]?.startsWith('10.98.0.1'));
    assert.ok(
      fromHeadend.some((r) => r[1] === '1'),
      'ARP request from the headend side',
    );
    assert.ok(
      fromHeadend.some((r) => r[1] === '2'),
      'ARP reply from the headend side',
    );
    assert.ok(
      fromHeadend.some((r) => r[2] === '8') && fromHeadend.some((r) => r[2] === '0'),
      'ICMP echo request and reply from the headend side',
    );
    // Same header bits as the kernel's own packets (I flag only, reserved bits zero).
    const kernelFlags = new Set(rows.filter((r) => !r[3]?.startsWith('10.98.0.1')).map((r) => r[4]));
    assert.deepEqual([...new Set(fromHeadend.map((r) => r[4]))], [...kernelFlags]);
    assert.equal(kernelFlags.size, 1);
    const malformed = await exec('tshark', [
      '-r',
      pcap,
      '-d',
      'udp.port==4789,vxlan',
      '-Y',
      '_ws.malformed || _ws.expert.severity >= error',
    ]);
    assert.equal(malformed.stdout.trim(), '', `malformed packets:\n${malformed.stdout}`);
    t.diagnostic(`tshark: ${rows.length} VXLAN packets, ${fromHeadend.length} sent by the headend, none malformed`);
    src.kill('SIGTERM');
  },
);
