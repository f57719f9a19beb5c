// SPDX-License-Identifier: UNLICENSED
// Super-frames end to end (issue 11, item 4), in namespaces with the real agent, headend and a kernel
// VXLAN VTEP (../dr/site-dc.ts): a LAN host's iperf3 flow reaches the agent's TAP as TCP super-frames
// (IFF_VNET_HDR, TSO on for a v2 session with `offload`), crosses the tunnel as OFFLOAD records, and the
// headend cuts them into ordinary frames. On the fabric, tcpdump + tshark see ordinary VXLAN packets within
// the link MTU whose inner TCP checksums are all correct, and the kernel VTEP delivers the flow. The same
// flow with the agent held at protocol 1 (no super-frames) gives the retransmission count "before".
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { exec } from '../../../src/shared/exec.js';
import { nsExec } from '../../../src/lab/adapters/netns.js';
import { PY_TX_CSUM_OFF } from '../../../src/lab/core/py-tools.js';
import { isRoot } from '../../helpers/netns.js';
import { skipOrFail, skipUnlessCi } from '../../helpers/skip.js';
import { hasTool } from '../l2/frame-fields.js';
import { waitFor } from '../../helpers/wait.js';
import { siteDc, type SiteDc } from '../dr/site-dc.js';

const FABRIC_MTU = 1554; // the dc<->hv link of site-dc.ts

function agentStatus(sock: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const c = createConnection(sock);
    c.on('data', (b) => (text += b.toString()));
    c.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
    c.on('error', reject);
  });
}

interface Iperf {
  retransmits: number;
  segments: number;
  mbps: number;
}

/**
 * A LAN host and a VM on VNI 100 of `tenant`; the agent on datagrams or TLS only. On datagrams both daemons
 * send from their threads (`send_thread`, `sendThreads`; the agent's TAP writes too): the path those
 * options take is tested end to end here.
 */
function oneHostOneVm(tenant: string, datagram: boolean): Parameters<typeof siteDc>[1] {
  return {
    agent: [`option datagram '${datagram ? 1 : 0}'`, ...(datagram ? [`option send_thread '1'`] : [])],
    ...(datagram ? { headend: { sendThreads: true } } : {}),
    registry: (vtep) => ({
      version: 1,
      tenants: { [tenant]: { segments: { lan: { vni: 100, vteps: [vtep] } } } },
      devices: { 'CN-0001': { state: 'claimed', tenant, segment: 'lan', updatedAt: '' } },
    }),
    hosts: { lanhost: { mac: '02:00:00:00:01:14', ipCidr: '192.168.1.20/24' } },
    vms: { vm: { vni: 100, mac: '02:00:00:00:01:32', ipCidr: '192.168.1.50/24' } },
  };
}

/** One iperf3 flow from the LAN host to the VM for `seconds`; the sender's retransmissions from its JSON. */
async function iperf(lab: SiteDc, seconds: number): Promise<Iperf> {
  const vm = lab.vms['vm']!;
  const host = lab.hosts['lanhost']!;
  const server = spawn('ip', ['netns', 'exec', vm.ns, 'iperf3', '-s', '-1', '-B', vm.ip], { stdio: 'ignore' });
  lab.children.push(server);
  await new Promise((r) => setTimeout(r, 300));
  const r = await nsExec(host.ns, 'iperf3', ['-c', vm.ip, '-t', String(seconds), '-J', '-M', '1448'], { allowFailure: true });
  assert.equal(r.code, 0, `iperf3: ${r.stderr}${r.stdout.slice(-500)}`);
  const j = JSON.parse(r.stdout) as { error?: string; end: { sum_sent?: { retransmits: number; bytes: number; bits_per_second: number } } };
  const s = j.end.sum_sent;
  assert.ok(s && j.error === undefined, `iperf3: ${j.error ?? r.stdout.slice(0, 1500)}`);
  return { retransmits: s.retransmits, segments: Math.ceil(s.bytes / 1448), mbps: s.bits_per_second / 1e6 };
}

/**
 * `kernel`: the headend on its kernel L2 engine, whose session port takes each super-frame whole and the
 * kernel segments it toward the VTEP (the userspace switch cuts it in TypeScript); no "before" run.
 * `datagram`: the agent on the datagram channel, which cuts each super-frame into one sealed datagram per
 * segment in C (aeadSealSegments): the headend never sees a super-frame, the VTEP sees what C computed.
 */
async function superFrames(t: TestContext, mode: 'userspace' | 'kernel' | 'datagram'): Promise<void> {
  {
    for (const tool of ['tshark', 'tcpdump', 'iperf3']) if (!(await hasTool(tool))) return skipOrFail(t, `${tool} is not installed`);
    const tenant = `o${process.pid}`;
    const kernel = mode === 'kernel';
    const lab = await siteDc(t, {
      // OFFLOAD records travel on TLS: the other modes keep the agent off datagrams (its default).
      ...oneHostOneVm(tenant, mode === 'datagram'),
      ...(kernel ? { headend: { l2: { engine: 'kernel' } } } : {}),
    });
    const vm = lab.vms['vm']!;
    const host = lab.hosts['lanhost']!;
    // A veth leaves TCP checksums to "hardware" that never runs, and the kernel VTEP wraps them unfinished:
    // the VM sends complete checksums, as a virtio NIC does (the bench topology does the same).
    await nsExec(vm.ns, 'python3', ['-c', PY_TX_CSUM_OFF, vm.ifname]);
    await waitFor('LAN host -> VM through the tunnel', 15_000, async () =>
      (await nsExec(host.ns, 'ping', ['-c', '1', '-W', '1', vm.ip], { allowFailure: true })).code === 0 ? true : undefined,
    );
    {
      // The kernel engine hands the vxlan device whole super-frames, and the userspace switch sends runs
      // of VXLAN packets as one UDP GSO send; a veth would carry either to the capture unsegmented and
      // with inner checksums left to "hardware", which no wire does: segmentation and checksums in
      // software before the link, as a NIC would do them.
      const off = ['tx', 'gso', 'tso', 'tx-udp-segmentation', 'tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'].flatMap((f) => [
        f,
        'off',
      ]);
      await nsExec(lab.dcNs, 'ethtool', ['-K', lab.scope.ifname('dh'), ...off]);
    }
    const sock = lab.d.path('agent.sock');
    const st = await agentStatus(sock);
    assert.deepEqual((st['tunnel'] as { protocol: unknown }).protocol, { version: 2, offload: true }, 'v2 with offload negotiated');
    if (mode === 'datagram')
      await waitFor(
        'the agent on datagrams',
        10_000,
        async () => ((await agentStatus(sock))['tunnel'] as { transport?: string }).transport === 'datagram',
      );

    // The fabric link at the hypervisor: the first 3000 VXLAN packets of the flow, whole.
    const pcap = lab.d.path('fabric.pcap');
    const dump = spawn(
      'ip',
      ['netns', 'exec', lab.hvNs, 'tcpdump', '-i', lab.scope.ifname('hd'), '-U', '-n', '-c', '3000', '-w', pcap, 'udp port 4789'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    lab.children.push(dump);
    await new Promise<void>((r) => dump.stderr.on('data', (b: Buffer) => b.toString().includes('listening') && r()));
    const after = await iperf(lab, 3);
    if (dump.exitCode === null) dump.kill('SIGINT');
    await new Promise((r) => (dump.exitCode !== null ? r(null) : dump.once('exit', r)));
    const done = await agentStatus(sock);
    const fwd = (done['counters'] as { forwarder: Record<string, unknown> }).forwarder;
    assert.ok(Number(fwd['offloadWhole']) > 0, `super-frames crossed whole: ${JSON.stringify(fwd)}`);
    assert.deepEqual(fwd['offloadDrops'], {});
    if (mode === 'datagram') {
      const tunnel = done['tunnel'] as { transport?: string; datagram?: { datagramsOut?: number } };
      assert.equal(tunnel.transport, 'datagram', 'still on datagrams after the flow');
      // Each super-frame became several datagrams: far more frames left than super-frames were read.
      assert.ok(
        Number(tunnel.datagram?.datagramsOut) > 2 * Number(fwd['offloadWhole']),
        `${tunnel.datagram?.datagramsOut} datagrams for ${Number(fwd['offloadWhole'])} super-frames`,
      );
    }

    const fields = await exec('tshark', [
      '-r',
      pcap,
      '-d',
      'udp.port==4789,vxlan',
      '-o',
      'tcp.check_checksum:TRUE',
      '-Y',
      'tcp',
      '-T',
      'fields',
      '-E',
      'separator=;',
      '-e',
      'ip.len',
      '-e',
      'tcp.checksum.status',
      '-e',
      'tcp.len',
    ]);
    const rows = fields.stdout.trim().split('\n').filter(Boolean);
    assert.ok(rows.length > 1000, `${rows.length} VXLAN/TCP packets captured`);
    let payloadPackets = 0;
    for (const row of rows) {
      const [ipLens, status, tcpLen] = row.split(';');
      const [outer, inner] = (ipLens ?? '').split(',').map(Number);
      assert.ok(outer !== undefined && outer <= FABRIC_MTU, `outer IP length ${outer} within the fabric MTU`);
      assert.ok(inner !== undefined && inner <= 1500, `inner IP length ${inner} within 1500`);
      assert.equal(status, '1', `inner TCP checksum good: ${row}`);
      if (Number(tcpLen) > 0) payloadPackets++;
    }
    assert.ok(payloadPackets > 1000, `${payloadPackets} data segments`);
    if (mode === 'datagram') {
      t.diagnostic(
        `datagram channel, one iperf3 flow, 3 s: ${after.mbps.toFixed(0)} Mbit/s, ${after.retransmits} retransmits of ${after.segments} segments`,
      );
      return;
    }
    if (kernel) {
      const m = await nsExec(lab.dcNs, 'curl', ['-s', `http://10.99.0.1:${lab.headend.metricsPort}/metrics`], { allowFailure: true });
      t.diagnostic(
        `kernel engine, one iperf3 flow, 3 s: ${after.mbps.toFixed(0)} Mbit/s, ${after.retransmits} retransmits of ${after.segments} segments`,
      );
      assert.match(m.stdout, /connector_headend_offload_total\{kind="whole"\} [1-9]/, 'super-frames entered the bridge whole');
      return;
    }

    // "Before": the same flow with the agent held at protocol 1 (no TAP offloads, frames one by one).
    const conf = lab.d.path('connector.uci');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace("config agent 'agent'\n", "config agent 'agent'\n\toption max_protocol '1'\n"));
    await lab.stopAgent();
    lab.startAgent();
    await waitFor('the agent up again at protocol 1', 20_000, async () => {
      try {
        const s = await agentStatus(sock);
        return (s['tunnel'] as { protocol: { version: number } | null }).protocol?.version === 1 ? true : undefined;
      } catch {
        return undefined;
      }
    });
    const before = await iperf(lab, 3);
    t.diagnostic(
      `one iperf3 flow, 3 s: v2 super-frames ${after.mbps.toFixed(0)} Mbit/s, ${after.retransmits} retransmits of ${after.segments} segments; ` +
        `v1 frames ${before.mbps.toFixed(0)} Mbit/s, ${before.retransmits} retransmits of ${before.segments}`,
    );
    // Retransmissions vary from run to run on a shared box: no more than before, or within 1 % of segments.
    assert.ok(
      after.retransmits <= Math.max(before.retransmits, after.segments / 100),
      `retransmits with super-frames ${after.retransmits}, before ${before.retransmits}`,
    );
  }
}

const root = { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces') };
test(
  'super-frames: OFFLOAD records from the agent reach a kernel VTEP as ordinary VXLAN packets within the MTU, checksums correct',
  root,
  (t) => superFrames(t, 'userspace'),
);
test('super-frames through the kernel L2 engine: whole into the bridge, segmented by the kernel, checksums correct', root, (t) =>
  superFrames(t, 'kernel'),
);
test(
  'super-frames on the datagram channel: cut and sealed in C, one datagram per segment, ordinary VXLAN packets with correct checksums at the VTEP',
  root,
  (t) => superFrames(t, 'datagram'),
);

// A 24 MiB stream from the VM to the LAN host, and its SHA-256 at both ends (python3 on each side).
const PY_SINK = `import socket, hashlib, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 7000)); s.listen(1)
s.settimeout(60); c, _ = s.accept(); c.settimeout(60); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())`;
const PY_SOURCE = `import socket, hashlib, sys
data = hashlib.shake_256(b'connector-kit').digest(24 << 20)
c = socket.create_connection((sys.argv[1], 7000), timeout=60); c.sendall(data); c.close()
print(len(data), hashlib.sha256(data).hexdigest())`;

/**
 * A 24 MiB stream from the VM to the LAN host. `datagram`: the headend sends its segments as datagrams and
 * the agent merges their runs into super-frames for its TAP; else (TLS) the headend merges a VTEP's runs
 * into OFFLOAD records, which the agent writes to its TAP whole.
 */
async function lanSuperFrames(t: TestContext, datagram: boolean): Promise<void> {
  for (const tool of ['tshark', 'tcpdump']) if (!(await hasTool(tool))) return skipOrFail(t, `${tool} is not installed`);
  const tenant = `r${process.pid}${datagram ? 'd' : 't'}`;
  const lab = await siteDc(t, oneHostOneVm(tenant, datagram));
  const vm = lab.vms['vm']!;
  const host = lab.hosts['lanhost']!;
  // The VM's NIC and the hypervisor's link finish checksums and segments as hardware would (see above).
  await nsExec(vm.ns, 'python3', ['-c', PY_TX_CSUM_OFF, vm.ifname]);
  const off = (...fs: string[]): string[] => fs.flatMap((f) => [f, 'off']);
  await nsExec(lab.hvNs, 'ethtool', [
    '-K',
    lab.scope.ifname('hd'),
    ...off('tx', 'gso', 'tso', 'tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'),
  ]);
  // The headend's fabric NIC merges the VTEP's datagrams (GRO), as a physical NIC does by default.
  await nsExec(lab.dcNs, 'ethtool', ['-K', lab.scope.ifname('dh'), 'gro', 'on']);
  // The bridge port toward the LAN host has no TSO and no checksum offload, as a plain switch port: the
  // kernel cuts each super-frame from the TAP and sums each segment in software, and the capture at the
  // LAN host sees the segments any wire would carry.
  await nsExec(lab.siteNs, 'ethtool', ['-K', lab.scope.ifname('lanhostp'), ...off('tx', 'gso', 'tso')]);
  await waitFor('LAN host -> VM through the tunnel', 15_000, async () =>
    (await nsExec(host.ns, 'ping', ['-c', '1', '-W', '1', vm.ip], { allowFailure: true })).code === 0 ? true : undefined,
  );
  const sock = lab.d.path('agent.sock');
  const transport = datagram ? 'datagram' : 'tls';
  await waitFor(
    `the agent on ${transport}`,
    10_000,
    async () => ((await agentStatus(sock))['tunnel'] as { transport?: string }).transport === transport,
  );
  const cap = await lab.capture(host.ns, host.ifname, 'lan', 'tcp port 7000');
  const sink = nsExec(host.ns, 'python3', ['-c', PY_SINK, host.ip], { allowFailure: true, timeoutMs: 90_000 });
  await new Promise((r) => setTimeout(r, 500));
  const source = await nsExec(vm.ns, 'python3', ['-c', PY_SOURCE, host.ip], { allowFailure: true, timeoutMs: 90_000 });
  const got = await sink;
  const pcap = await cap.stop();
  assert.equal(source.code, 0, `source: ${source.stderr}`);
  assert.equal(got.code, 0, `sink: ${got.stderr}`);
  assert.equal(got.stdout.trim(), source.stdout.trim(), 'the LAN host read the VM stream byte for byte');

  const fwd = (
    (await agentStatus(sock))['counters'] as {
      forwarder: { offloadWhole: number; lanCoalesce: { superFrames: number; segments: number; badChecksum: number } };
    }
  ).forwarder;
  if (datagram) {
    // Every datagram and every TAP write was made by the agent's threads, none lost there.
    const st = await agentStatus(sock);
    const socket = (st['tunnel'] as { datagram?: { socket?: { sendThread?: boolean; sendDrops?: number } } }).datagram?.socket;
    const tap = (st['counters'] as { tap?: { writeThread?: boolean; txDrops?: number } }).tap;
    assert.equal(socket?.sendThread, true, 'the datagram socket sends from its thread');
    assert.equal(socket?.sendDrops, 0);
    assert.equal(tap?.writeThread, true, 'the TAP is written from its thread');
    assert.equal(tap?.txDrops, 0);
    const c = fwd.lanCoalesce;
    t.diagnostic(`LAN coalescing: ${c.segments} segments in ${c.superFrames} super-frames`);
    assert.ok(c.superFrames > 50, `super-frames written to the TAP: ${JSON.stringify(c)}`);
    assert.ok(c.segments > 4 * c.superFrames, `several segments per super-frame: ${JSON.stringify(c)}`);
    assert.equal(c.badChecksum, 0);
  } else {
    const m = await nsExec(lab.dcNs, 'curl', ['-s', `http://10.99.0.1:${lab.headend.metricsPort}/metrics`], { allowFailure: true });
    const metric = (kind: string): number =>
      Number(new RegExp(`connector_headend_vtep_coalesce_total\\{kind="${kind}"\\} (\\d+)`).exec(m.stdout)?.[1] ?? 0);
    const [supers, segs] = [metric('super-frames'), metric('segments')];
    t.diagnostic(`headend coalescing: ${segs} segments in ${supers} OFFLOAD records; ${fwd.offloadWhole} written whole by the agent`);
    assert.ok(supers > 50, `OFFLOAD records from the VTEP's runs: ${supers}`);
    assert.ok(segs > 4 * supers, `several segments per record: ${segs} in ${supers}`);
    assert.equal(metric('bad-checksum'), 0);
    assert.ok(fwd.offloadWhole >= supers, `the agent wrote them to its TAP whole: ${fwd.offloadWhole}`);
  }

  const rows = (
    await exec('tshark', [
      '-r',
      pcap,
      '-o',
      'tcp.check_checksum:TRUE',
      '-Y',
      'tcp.len > 0',
      '-T',
      'fields',
      '-E',
      'separator=;',
      '-e',
      'frame.len',
      '-e',
      'tcp.checksum.status',
    ])
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean);
  // tcpdump may drop some under load (the stream's hash above is what proves delivery): enough to judge.
  assert.ok(rows.length > 1_000, `${rows.length} data segments captured at the LAN host`);
  for (const row of rows) {
    const [len, status] = row.split(';');
    assert.ok(Number(len) <= 1514, `a wire-sized frame at the LAN host: ${row}`);
    assert.equal(status, '1', `TCP checksum good at the LAN host: ${row}`);
  }
}

test(
  'segments from the datagram channel reach the LAN as super-frames: one TAP write per run, the stream intact, every checksum good once the kernel cuts them',
  root,
  (t) => lanSuperFrames(t, true),
);

test(
  "on TLS a VTEP's runs reach the agent as OFFLOAD records it writes whole: the stream intact, every checksum good once the kernel cuts them",
  root,
  (t) => lanSuperFrames(t, false),
);
