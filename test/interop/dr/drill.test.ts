// SPDX-License-Identifier: UNLICENSED
// Drills in namespaces (issue 15, item 1), with the real agent, headend and kernel VTEPs (site-dc.ts):
//  - in place: `connector drill start --kind in-place`, the drill VM joins the tenant's segment with a
//    different IP; `drill probe` checks ARP + ICMP from the LAN side to the VM and from the VM to a LAN
//    host and records them; the drill VM then claims a production address: 0 of its claims reach the LAN
//    (capture) and the LAN's ARP caches keep the production MAC (the split-brain guard).
//  - sandbox: `drill start --kind sandbox` adds a segment with its own VNI; a VM there with production
//    addressing sends ARP, GARP and pings: 0 frames reach the LAN, nothing gets out, no unit can be put on
//    that segment, and `drill end` removes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from '../../../src/shared/exec.js';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { gatewayName } from '../../../src/dr/adapters/gateway.js';
import { isRoot } from '../../helpers/netns.js';
import { REPO } from '../../integration/headend/adapters/fixtures.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import { siteDc } from './site-dc.js';

const SKIP = skipUnlessCi(!isRoot() && 'needs root for network namespaces');
const HOSTS = {
  lanhost: { mac: '02:00:00:00:0a:20', ipCidr: '192.168.10.20/24' },
  observer: { mac: '02:00:00:00:0a:30', ipCidr: '192.168.10.30/24' },
};
const registry = (vtep: string): unknown => ({
  version: 1,
  tenants: { acme: { segments: { lan: { vni: 100, vteps: [vtep] } } } },
  devices: { 'CN-0001': { state: 'claimed', tenant: 'acme', segment: 'lan', updatedAt: '' } },
});

/** argv: ifname mac ip count: gratuitous ARP replies claiming ip for mac. */
const PY_GARP = String.raw`
import socket, struct, sys, time
ifname, mac, ip, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((ifname, 0))
for _ in range(count):
    s.send(b'\xff' * 6 + mac + b'\x08\x06' + struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2, mac, ip, b'\xff' * 6, ip) + b'\0' * 18)
    time.sleep(0.3)
`;

function cli(args: string[], allowFailure = false): Promise<ExecResult> {
  return exec(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), ...args], { cwd: REPO, allowFailure });
}

async function tsharkRows(pcap: string, filter: string, fields: string[]): Promise<string[][]> {
  const r = await exec('tshark', ['-r', pcap, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

test(
  'in-place drill: reachability both ways is probed and timed; a drill VM on a production address disturbs nothing',
  { skip: SKIP },
  async (t) => {
    const lab = await siteDc(t, {
      registry,
      hosts: HOSTS,
      vms: { drillvm: { vni: 100, mac: '02:00:00:00:0a:77', ipCidr: '192.168.10.77/24' } },
    });
    const { lanhost, observer } = lab.hosts as {
      lanhost: { ns: string; ifname: string; mac: string; ip: string };
      observer: { ns: string; ifname: string; mac: string; ip: string };
    };
    const vm = lab.vms['drillvm'];
    assert.ok(vm);
    const reg = ['--registry', lab.registryFile];
    const started = JSON.parse(
      (await cli(['drill', 'start', ...reg, '--tenant', 'acme', '--kind', 'in-place', '--vm-ip', vm.ip, '--ttl', '600'])).stdout,
    ) as {
      id: string;
      state: string;
    };
    assert.equal(started.state, 'running');

    // From the Connector's LAN side to the drill VM, then from the drill VM to a LAN host.
    const lanSide = await cli(
      ['drill', 'probe', ...reg, '--id', started.id, '--side', 'lan', '--netns', lanhost.ns, '--ifname', lanhost.ifname, '--target', vm.ip],
      true,
    );
    assert.equal(lanSide.code, 0, lanSide.stdout + lanSide.stderr);
    const dcSide = await cli(
      ['drill', 'probe', ...reg, '--id', started.id, '--side', 'dc', '--netns', vm.ns, '--ifname', vm.ifname, '--target', lanhost.ip],
      true,
    );
    assert.equal(dcSide.code, 0, dcSide.stdout + dcSide.stderr);
    const p1 = JSON.parse(lanSide.stdout) as { arp: { mac: string; ms: number }; icmp: { received: number; rttMs: number[] } };
    const p2 = JSON.parse(dcSide.stdout) as { arp: { mac: string; ms: number }; icmp: { received: number; rttMs: number[] } };
    assert.equal(p1.arp.mac, vm.mac);
    assert.equal(p2.arp.mac, lanhost.mac);
    assert.equal(p1.icmp.received, 3);
    assert.equal(p2.icmp.received, 3);
    t.diagnostic(
      `LAN -> drill VM: ARP ${p1.arp.ms} ms, ICMP RTT ${p1.icmp.rttMs.join('/')} ms; drill VM -> LAN host: ARP ${p2.arp.ms} ms, ICMP ${p2.icmp.rttMs.join('/')} ms`,
    );

    // The observer knows the production host; the drill VM then takes the production host's address.
    await nsExec(observer.ns, 'ping', ['-c', '1', '-W', '2', lanhost.ip]);
    const cap = await lab.capture(observer.ns, observer.ifname, 'observer', 'arp');
    await nsExec(vm.ns, 'ip', ['addr', 'add', `${lanhost.ip}/24`, 'dev', vm.ifname]);
    await nsExec(vm.ns, 'python3', ['-c', PY_GARP, vm.ifname, vm.mac, lanhost.ip, '4']);
    await new Promise((r) => setTimeout(r, 1_000));
    const pcap = await cap.stop();
    const claims = await tsharkRows(pcap, `eth.src == ${vm.mac} && arp.src.proto_ipv4 == ${lanhost.ip}`, ['frame.number']);
    const allFromVm = await tsharkRows(pcap, `eth.src == ${vm.mac}`, ['frame.number', 'arp.opcode', 'arp.src.proto_ipv4']);
    t.diagnostic(`frames from the drill VM on the LAN while it claimed ${lanhost.ip}: ${allFromVm.length} (claims: ${claims.length})`);
    assert.equal(claims.length, 0, "0 of the drill VM's claims for the production address reached the LAN");
    const neigh = await nsExec(observer.ns, 'ip', ['neigh', 'show', lanhost.ip]);
    assert.match(neigh.stdout, new RegExp(lanhost.mac), "the observer's ARP cache keeps the production MAC");
    const still = await nsExec(observer.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', lanhost.ip], { allowFailure: true });
    assert.match(still.stdout, /2 received/, 'production traffic goes on');

    const status = JSON.parse((await cli(['drill', 'status', ...reg, '--id', started.id])).stdout) as {
      timeline: { event: string; ok?: boolean; side?: string }[];
    };
    assert.deepEqual(
      status.timeline.map((e) => [e.event, e.side, e.ok]),
      [
        ['drill-start', undefined, undefined],
        ['probe', 'lan', true],
        ['probe', 'dc', true],
      ],
    );
    const ended = JSON.parse((await cli(['drill', 'end', ...reg, '--id', started.id])).stdout) as { state: string };
    assert.equal(ended.state, 'ended');
    const rep = JSON.parse(
      (await cli(['drill', 'report', ...reg, '--id', started.id, '--audit-log', lab.d.path('audit.jsonl'), '--out', lab.d.path('reports')]))
        .stdout,
    ) as { json: string; figures: Record<string, number | string | null> };
    t.diagnostic(`in-place drill report figures: ${JSON.stringify(rep.figures)}`);
    assert.equal(rep.figures['probesOk'], 2);
    assert.equal((await cli(['drill', 'verify-report', '--report', rep.json, '--audit-log', lab.d.path('audit.jsonl')], true)).code, 0);
  },
);

test(
  'sandbox drill: its own VNI with production addressing; 0 frames reach the LAN, nothing gets out, removed at the end',
  { skip: SKIP },
  async (t) => {
    const lab = await siteDc(t, { registry, hosts: HOSTS, vms: {} });
    const { lanhost, observer } = lab.hosts as {
      lanhost: { ns: string; ifname: string; mac: string; ip: string };
      observer: { ns: string; ifname: string; mac: string; ip: string };
    };
    const reg = ['--registry', lab.registryFile];
    const started = JSON.parse((await cli(['drill', 'start', ...reg, '--tenant', 'acme', '--kind', 'sandbox', '--ttl', '600'])).stdout) as {
      id: string;
      vni: number;
      sandboxSegment: string;
    };
    assert.ok(started.vni >= 0xf00000);
    await lab.headend.waitForLine((l) => l['msg'] === 'registry loaded' && l['why'] === 'file-changed', 10_000);
    // The restored copy of the production host, with the production address, in the sandbox.
    const copy = await lab.addVm('sbx', started.vni, '02:00:00:00:5b:20', `${lanhost.ip}/24`);
    await nsExec(copy.ns, 'ip', ['route', 'add', 'default', 'via', '192.168.10.1']);
    const cap = await lab.capture(observer.ns, observer.ifname, 'lan-sandbox');
    await nsExec(copy.ns, 'python3', ['-c', PY_GARP, copy.ifname, copy.mac, lanhost.ip, '3']);
    const toLan = await nsExec(copy.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', observer.ip], { allowFailure: true });
    const out = await nsExec(copy.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.200.0.1'], { allowFailure: true });
    assert.notEqual(toLan.code, 0, 'the LAN is not reachable from the sandbox');
    assert.notEqual(out.code, 0, 'outbound is blocked (no gateway in the sandbox)');
    const pcap = await cap.stop();
    const fromCopy = await tsharkRows(pcap, `eth.src == ${copy.mac}`, ['frame.number']);
    const claims = await tsharkRows(pcap, `arp.src.proto_ipv4 == ${lanhost.ip}`, ['eth.src']);
    const fromSandbox = [...fromCopy, ...claims.filter((r) => r[0] !== lanhost.mac)];
    const all = await tsharkRows(pcap, 'frame', ['frame.number']);
    t.diagnostic(`frames on the observer's link during the sandbox traffic: ${all.length}, from the sandbox: ${fromSandbox.length}`);
    assert.equal(fromSandbox.length, 0, '0 sandbox frames reached the LAN');
    // No unit can be put on the sandbox segment.
    const claim = await cli(
      ['registry', 'claim', ...reg, '--serial', 'CN-0001', '--tenant', 'acme', '--segment', started.sandboxSegment],
      true,
    );
    assert.notEqual(claim.code, 0);
    assert.match(claim.stderr, /sandbox/);

    // The sandbox's gateway: the restored VMs find their router's address; without --allow-outbound it
    // routes nothing out.
    const inet = await lab.scope.ns('inet');
    await ipIn(inet, 'link', 'set', 'lo', 'up');
    const gatewayArgs = (id: string, vni: number): string[] => [
      'drill',
      'gateway',
      ...reg,
      '--id',
      id,
      '--gateway',
      '192.168.10.1/24',
      '--dc-netns',
      lab.hvNs,
      '--dc-bridge',
      `br${vni}`,
      '--uplink-netns',
      inet,
      '--uplink',
      '203.0.113.2/24,203.0.113.1',
    ];
    t.after(() => void exec('ip', ['netns', 'del', gatewayName('acme', started.sandboxSegment)], { allowFailure: true }));
    const gw = JSON.parse((await cli(gatewayArgs(started.id, started.vni))).stdout) as { outbound: boolean };
    assert.equal(gw.outbound, false);
    const toGw = await nsExec(copy.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '192.168.10.1'], { allowFailure: true });
    const blocked = await nsExec(copy.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '203.0.113.1'], { allowFailure: true });
    assert.equal(toGw.code, 0, 'the sandbox VM reaches its gateway');
    assert.notEqual(blocked.code, 0, 'outbound is blocked: the gateway routes nothing out');

    await cli(['drill', 'end', ...reg, '--id', started.id]);
    const doc = JSON.parse(readFileSync(lab.registryFile, 'utf8')) as { tenants: { acme: { segments: Record<string, unknown> } } };
    assert.deepEqual(Object.keys(doc.tenants.acme.segments), ['lan'], 'the sandbox segment is gone');
    const left = await exec('ip', ['netns', 'list']);
    assert.doesNotMatch(left.stdout, new RegExp(gatewayName('acme', started.sandboxSegment)), 'the gateway went with the drill');

    // A sandbox drill started with --allow-outbound: its gateway routes out with NAT.
    const open = JSON.parse(
      (await cli(['drill', 'start', ...reg, '--tenant', 'acme', '--kind', 'sandbox', '--ttl', '600', '--allow-outbound'])).stdout,
    ) as { id: string; vni: number; sandboxSegment: string };
    t.after(() => void exec('ip', ['netns', 'del', gatewayName('acme', open.sandboxSegment)], { allowFailure: true }));
    const copy2 = await lab.addVm('sbo', open.vni, '02:00:00:00:5b:21', `${lanhost.ip}/24`);
    await nsExec(copy2.ns, 'ip', ['route', 'add', 'default', 'via', '192.168.10.1']);
    assert.equal((JSON.parse((await cli(gatewayArgs(open.id, open.vni))).stdout) as { outbound: boolean }).outbound, true);
    const allowed = await nsExec(copy2.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '203.0.113.1'], { allowFailure: true });
    assert.equal(allowed.code, 0, 'outbound allowed: the sandbox VM reaches the internet stand-in');
    await cli(['drill', 'end', ...reg, '--id', open.id]);
  },
);
