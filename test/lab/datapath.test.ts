// SPDX-License-Identifier: UNLICENSED
// The product's promise on real Linux networking: a LAN host and the recovered VM on the same subnet talk
// through agent -> TLS -> headend -> kernel VXLAN, two tenants with identical addresses never see each
// other, and the Layer-2 policy (ARP proxy, GARP, split-brain guard) behaves on the wire. One shared lab
// (one-port wiring: the tunnel leaves through the LAN it extends, through two NATs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { exec } from '../../src/shared/exec.js';
import { addNetns, addVeth, ipIn } from '../../src/lab/adapters/netns.js';
import { PY_GARP } from '../../src/lab/core/py-tools.js';
import { DC, SITE, TENANT_VNI } from '../../src/lab/core/topology.js';
import { garpMove, labSkipReason, neighMac, num, openLabWithTunnels, pcapLines, type LabHandle } from './lab-fixture.js';
import { waitFor } from '../helpers/wait.js';

const skip = labSkipReason({ headend: true, agents: true });

const PY_BCAST = String.raw`
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for _ in range(3): s.sendto(sys.argv[1].encode(), ('192.168.10.255', 9999))
print(json.dumps({'sent': 3}))
`;

describe('data path through the lab (one-port wiring)', { skip }, () => {
  let lab: LabHandle;
  before(async () => {
    lab = await openLabWithTunnels();
  });
  after(() => lab?.down());

  test('lan-host and vm ping each other (both tenants)', async () => {
    for (const [from, to] of [
      ['lan-host', SITE.vm.ip],
      ['vm', SITE.lanHost.ip],
      ['lan-b', SITE.vm.ip],
      ['vm-b', SITE.lanHost.ip],
    ] as const) {
      const r = await lab.ping(from, to, { count: 3 });
      assert.equal(r.received, 3, `${from} -> ${to}: ${JSON.stringify(r)}`);
    }
  });

  test('the tunnels carry their frames as datagrams beside TLS (the lab site lets UDP out through its NAT)', async () => {
    for (const tenant of ['a', 'b'] as const) {
      const st = await lab.agentStatus(tenant);
      const tunnel = st['tunnel'] as Record<string, unknown> | undefined;
      const dgOut = num(st, 'tunnel.datagram.datagramsOut');
      await lab.ping(tenant === 'a' ? 'lan-host' : 'lan-b', SITE.vm.ip, { count: 3 });
      const after = await lab.agentStatus(tenant);
      assert.equal(tunnel?.['transport'], 'datagram', `tenant ${tenant}: ${JSON.stringify(tunnel)}`);
      assert.ok(num(after, 'tunnel.datagram.datagramsOut') >= dgOut + 3, `tenant ${tenant}: the pings left as datagrams`);
    }
  });

  test('DF pings of 1500-byte IP packets pass in both directions', async () => {
    for (const [from, to] of [
      ['lan-host', SITE.vm.ip],
      ['vm', SITE.lanHost.ip],
    ] as const) {
      const r = await lab.ping(from, to, { count: 3, size: 1472, df: true });
      assert.equal(r.ipBytes, 1500);
      assert.equal(r.received, 3, `${from} -> ${to}: ${JSON.stringify(r)}`);
    }
  });

  test('a 50 MB TCP transfer from lan-host to vm arrives intact', async () => {
    const bytes = 50 * 1024 * 1024;
    const { sent, received } = await lab.tcpTransfer('lan-host', 'vm', SITE.vm.ip, bytes);
    assert.equal(received.bytes, bytes);
    assert.equal(received.sha256, sent.sha256);
    console.log(`# 50 MB lan-host -> vm: ${sent.seconds.toFixed(2)} s, ${((bytes * 8) / sent.seconds / 1e6).toFixed(0)} Mbit/s`);
  });

  test("after learning, the Connector answers lan-host's ARP for the VM locally; the request does not cross", async () => {
    await lab.ping('lan-host', SITE.vm.ip, { count: 1 }); // fresh remote binding for 192.168.10.5
    const before = num(await lab.agentStatus('a'), 'counters.core.fromLan.answered');
    const capHv = await lab.capture('hv', 'vm-a', 'arp');
    const capLan = await lab.capture('lan-host', 'eth0', 'arp');
    await lab.run('lan-host', 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    const r = await lab.ping('lan-host', SITE.vm.ip, { count: 2 });
    assert.equal(r.received, 2);
    const hv = await pcapLines(await capHv.stop());
    const lan = await pcapLines(await capLan.stop());
    const after = num(await lab.agentStatus('a'), 'counters.core.fromLan.answered');
    assert.ok(after > before, `answered counter ${before} -> ${after}`);
    assert.ok(
      lan.some((l) => /Request who-has 192\.168\.10\.5 tell 192\.168\.10\.20/.test(l)),
      lan.join('\n'),
    );
    assert.ok(
      lan.some((l) => /Reply 192\.168\.10\.5 is-at 02:00:00:00:10:05/.test(l)),
      'lan-host got its answer',
    );
    assert.deepEqual(
      hv.filter((l) => /who-has 192\.168\.10\.5 tell 192\.168\.10\.20/.test(l)),
      [],
      'the request did not reach the hypervisor',
    );
    assert.equal(await neighMac(lab, 'lan-host', SITE.vm.ip), SITE.vm.mac);
  });

  test("a GARP from vm after a MAC change updates lan-host's neighbour entry within 1 s", async () => {
    const ms = await garpMove(lab, '02:00:00:00:10:55', 1_000);
    console.log(`# GARP -> lan-host neighbour updated in ${ms} ms`);
    await waitFor('lan-host back on the original MAC', 5_000, async () =>
      (await neighMac(lab, 'lan-host', SITE.vm.ip)) === SITE.vm.mac ? true : undefined,
    );
  });

  test('tenant isolation: captures in each tenant see zero frames of the other', async () => {
    const nodes = { a: ['lan-host', 'vm'], b: ['lan-b', 'vm-b'] } as const;
    const caps = await Promise.all([...nodes.a, ...nodes.b].map(async (n) => ({ n, cap: await lab.capture(n, 'eth0', '') })));
    // Same addresses, same MACs: only the payload tells the tenants apart.
    await Promise.all([
      lab.ping('lan-host', SITE.vm.ip, { count: 3, pattern: 'aaaaaaaa' }),
      lab.ping('vm', SITE.lanHost.ip, { count: 3, pattern: 'aaaaaaaa' }),
      lab.ping('lan-b', SITE.vm.ip, { count: 3, pattern: 'bbbbbbbb' }),
      lab.ping('vm-b', SITE.lanHost.ip, { count: 3, pattern: 'bbbbbbbb' }),
      lab.py('lan-host', PY_BCAST, ['TENANT-A']),
      lab.py('lan-b', PY_BCAST, ['TENANT-B']),
    ]);
    for (const { n, cap } of caps) {
      const file = await cap.stop();
      const mine = nodes.a.includes(n as 'lan-host') ? 'a' : 'b';
      const [own, other] = mine === 'a' ? ['0xaaaaaaaa', '0xbbbbbbbb'] : ['0xbbbbbbbb', '0xaaaaaaaa'];
      assert.ok((await pcapLines(file, `icmp[8:4] = ${own}`)).length >= 6, `${n} saw its own tenant's pings`);
      assert.deepEqual(await pcapLines(file, `icmp[8:4] = ${other}`), [], `${n} saw the other tenant's pings`);
      const raw = readFileSync(file);
      assert.equal(raw.includes(Buffer.from(mine === 'a' ? 'TENANT-B' : 'TENANT-A')), false, `${n} saw the other tenant's broadcast`);
      assert.equal(raw.includes(Buffer.from(mine === 'a' ? 'TENANT-A' : 'TENANT-B')), true, `${n} saw its own tenant's broadcast`);
    }
  });

  test('interop: tshark decodes our VXLAN on the hv link (VNI, inner ARP and ICMP), nothing malformed', async () => {
    const cap = await lab.capture('hv', 'fabric', 'udp port 4789');
    await lab.run('vm', 'ip', ['neigh', 'flush', 'dev', 'eth0']); // the VM must ARP across the tunnel
    await lab.run('vm-b', 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    await lab.ping('vm', SITE.lanHost.ip, { count: 2 });
    await lab.ping('vm-b', SITE.lanHost.ip, { count: 2 });
    await lab.ping('lan-host', SITE.vm.ip, { count: 2 });
    const file = await cap.stop();
    const fields = await exec('tshark', [
      '-r',
      file,
      '-d',
      'udp.port==4789,vxlan',
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-E',
      'occurrence=f',
      '-e',
      'ip.src',
      '-e',
      'vxlan.vni',
      '-e',
      'arp.opcode',
      '-e',
      'icmp.type',
    ]);
    const rows = fields.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|'));
    assert.ok(rows.length > 0);
    const vnis = new Set(rows.map((r) => r[1]));
    assert.deepEqual([...vnis].sort(), [String(TENANT_VNI.a), String(TENANT_VNI.b)]);
    const fromHeadend = rows.filter((r) => r[0] === DC.fabricAddr);
    const fromHv = rows.filter((r) => r[0] === DC.hvFabricAddr);
    assert.ok(
      fromHeadend.some((r) => r[3]?.includes('8')) && fromHv.some((r) => r[3]?.includes('0')),
      'echo requests from the headend, replies from the kernel VTEP',
    );
    assert.ok(rows.some((r) => r[2] === '1') && rows.some((r) => r[2] === '2'), 'ARP requests and replies inside VXLAN');
    const bad = await exec('tshark', ['-r', file, '-d', 'udp.port==4789,vxlan', '-Y', '_ws.malformed || _ws.expert.severity >= error']);
    assert.equal(bad.stdout.trim(), '', 'malformed or erroneous packets');
  });

  test('no listening socket in the connector namespaces; the headend sees the tunnel through the NAT', async () => {
    for (const node of ['connector', 'connector-b']) {
      const r = await lab.run(node, 'ss', ['-Hlntu']);
      assert.equal(r.stdout.trim(), '', `${node} listens: ${r.stdout}`);
    }
    const audit = readFileSync(lab.state().files['auditLog'] ?? '', 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const connects = audit.filter((e) => JSON.stringify(e).includes('"connect"'));
    assert.ok(connects.length >= 2, 'both sessions are in the audit log');
    for (const c of connects)
      assert.match(JSON.stringify(c), new RegExp(`"remote":"${DC.ispAddr.replace(/\./g, '\\.')}:\\d+"`), 'remote = the CGNAT address');
  });

  test('garbage and oversize records on another session are counted and do not disturb the tenants', async () => {
    const metric = async (): Promise<Map<string, number>> => {
      const r = await lab.run('dc', 'curl', ['-s', `http://${lab.state().files['headendMetrics'] ?? ''}/metrics`]);
      const m = new Map<string, number>();
      for (const l of r.stdout.split('\n')) {
        const x = /^connector_headend_(drops|session_closes)_total\{reason="([^"]+)"\} (\d+)/.exec(l);
        if (x?.[1] && x[2] && x[3]) m.set(`${x[1]}:${x[2]}`, Number(x[3]));
      }
      return m;
    };
    const before = await metric();
    const files = lab.state().files;
    // A valid device whose stream is nonsense: two 20-byte records too short to hold VXLAN + Ethernet,
    // then a length prefix beyond the maximum record.
    const tiny = Buffer.concat([Buffer.from([0x00, 0x14]), Buffer.alloc(20)]);
    const junk = Buffer.concat([tiny, tiny, Buffer.from([0xff, 0xff]), Buffer.alloc(4096, 0x5a)]);
    const pingsA = lab.ping('lan-host', SITE.vm.ip, { count: 10, intervalS: 0.1 });
    await lab.run(
      'router',
      'sh',
      [
        '-c',
        `(printf '%s' "$1" | base64 -d; sleep 1) | timeout 5 openssl s_client -quiet -connect ${DC.publicAddr}:${DC.tlsPort} -alpn connector-l2/1 -tls1_3 -cert "$2" -key "$3" -CAfile "$4"`,
        'sh',
        junk.toString('base64'),
        files['cert:LAB-SPARE-01'] ?? '',
        files['key:LAB-SPARE-01'] ?? '',
        files['dcCa'] ?? '',
      ],
      { allowFailure: true, timeoutMs: 10_000 },
    );
    const after = await metric();
    const delta = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    assert.ok(delta('drops:record-undersize') >= 2, JSON.stringify([...after]));
    assert.equal(delta('drops:record-oversize'), 1);
    assert.equal(delta('session_closes:record-oversize'), 1, 'only the offending session is closed');
    assert.equal((await pingsA).received, 10, 'tenant A kept working while it happened');
    assert.equal((await lab.ping('lan-b', SITE.vm.ip, { count: 2 })).received, 2);
  });

  // Last: it leaves an intruder on tenant A's LAN.
  test("IPv6 on: the Connector's own DAD, MLD, solicitations and pings never enter the tunnel; the LAN's IPv6 crosses", async () => {
    const tapMac = /link\/ether ([0-9a-f:]{17})/.exec((await lab.run('connector', 'ip', ['-o', 'link', 'show', 'tap-dr'])).stdout)?.[1];
    assert.ok(tapMac, 'tap-dr has a MAC');
    const tapAddrs = (await lab.run('connector', 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'tap-dr'])).stdout.trim();
    assert.equal(tapAddrs, '', 'the TAP has no IPv6 address of its own');
    const vmLinkLocal = /inet6 (fe80::[0-9a-f:]+)\//.exec(
      (await lab.run('vm', 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout,
    )?.[1];
    assert.ok(vmLinkLocal, 'the VM has a link-local address (IPv6 on in the datacentre)');
    const ownBefore = num(await lab.agentStatus('a'), 'counters.core.fromLan.drops.own-traffic');
    const cap = await lab.capture('vm', 'eth0', 'ip6');
    // The Connector's br-lan starts IPv6 afresh (DAD, MLD reports, router solicitations) and pings all nodes.
    await lab.run('connector', 'sysctl', ['-qw', 'net.ipv6.conf.br-lan.disable_ipv6=1']);
    await lab.run('connector', 'sysctl', ['-qw', 'net.ipv6.conf.br-lan.disable_ipv6=0']);
    await lab.run('connector', 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '1', 'ff02::1%br-lan'], { allowFailure: true });
    const r = await lab.run('lan-host', 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', `${vmLinkLocal}%eth0`], { allowFailure: true });
    assert.match(r.stdout, / 3 received/, `lan-host reaches the VM over IPv6 (neighbour discovery across the tunnel): ${r.stdout}`);
    await new Promise((res) => setTimeout(res, 2_500)); // DAD (1 s) and the first solicitation after it
    const file = await cap.stop();
    const own = await pcapLines(file, `ether src ${SITE.connector.mac} or ether src ${tapMac}`);
    assert.deepEqual(own, [], "none of the Connector's own IPv6 frames reached the datacentre");
    assert.ok((await pcapLines(file, `ether src ${SITE.lanHost.mac}`)).length >= 3, "the LAN host's IPv6 did");
    const ownAfter = num(await lab.agentStatus('a'), 'counters.core.fromLan.drops.own-traffic');
    assert.ok(ownAfter > ownBefore, `the agent dropped them as its own (own-traffic ${ownBefore} -> ${ownAfter})`);
  });

  test("split brain: a LAN host taking the VM's address raises an alarm; cloud-side claims stop reaching the LAN", async () => {
    await lab.ping('lan-host', SITE.vm.ip, { count: 1 }); // the VM's binding is live on the tunnel side
    const intruder = `${lab.prefix}-intruder`;
    const intruderMac = '02:00:00:00:66:05';
    await addNetns(intruder);
    await addVeth({ ns: lab.ns('sw'), ifname: 'p-intr' }, { ns: intruder, ifname: 'eth0', mac: intruderMac });
    await ipIn(lab.ns('sw'), 'link', 'set', 'p-intr', 'master', 'sw', 'up');
    await ipIn(intruder, 'addr', 'add', `${SITE.vm.ip}/24`, 'dev', 'eth0');
    await ipIn(intruder, 'link', 'set', 'eth0', 'up');
    await new Promise((r) => setTimeout(r, 300)); // carrier up on both ends of the new port
    // The intruder announces the address; then the VM claims it again from the DC: both live = split brain.
    await exec('ip', ['netns', 'exec', intruder, 'python3', '-c', PY_GARP, 'eth0', intruderMac, SITE.vm.ip, '2', '0.2']);
    const blockedBefore = num(await lab.agentStatus('a'), 'counters.core.fromTunnel.drops.split-brain-claim');
    const cap = await lab.capture('lan-host', 'eth0', `arp and ether src ${SITE.vm.mac}`);
    await lab.garp('vm', 'eth0', SITE.vm.mac, SITE.vm.ip, 2);

    const alarm = await waitFor('a split-brain alarm', 5_000, async () => {
      const st = await lab.agentStatus('a');
      const active = (st['alarms'] as { active?: Record<string, unknown>[] } | undefined)?.active ?? [];
      return active.find((a) => a['code'] === 'split-brain');
    });
    assert.equal(alarm['subject'], SITE.vm.ip);
    await lab.garp('vm', 'eth0', SITE.vm.mac, SITE.vm.ip, 1);
    const lines = await pcapLines(await cap.stop());
    assert.deepEqual(lines, [], "the VM's claim for 192.168.10.5 did not reach the LAN");
    const blockedAfter = num(await lab.agentStatus('a'), 'counters.core.fromTunnel.drops.split-brain-claim');
    assert.ok(blockedAfter > blockedBefore, `split-brain-claim drops ${blockedBefore} -> ${blockedAfter}`);
  });
});
