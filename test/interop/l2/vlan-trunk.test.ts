// SPDX-License-Identifier: UNLICENSED
// Two VLANs through one Connector into two segments with identical addressing: 0 frames cross (issue 15,
// target 4). Namespaces (root); the LAN side has no kernel VLAN support, so the LAN host is a raw-socket
// tool that writes and reads 802.1Q-tagged frames itself:
//   lan (raw tagged ARP + ICMP, VLAN 10 and 20, same IP) --veth-- site (br0 + the real agent's TAP, trunk
//   10:a 20:b) --veth-- dc (headend) --veth-- hv (kernel vxlan 110 and 120, one bridge each) -- vm10 / vm20
//   (both 10.0.0.5/24, different MACs)
// tcpdump on each VM's link and on the LAN link; tshark reads the captures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/shared/exec.js';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { isRoot, kernelVtep, netnsScope } from '../../helpers/netns.js';
import { REPO, headendConfigDoc, spawnHeadend, writeJson } from '../../integration/headend/adapters/fixtures.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';
import { skipUnlessCi } from '../../helpers/skip.js';

const VM_MAC = { 10: '02:00:00:00:0a:05', 20: '02:00:00:00:14:05' } as const;
const HOST_MAC = { 10: '02:00:00:00:0a:20', 20: '02:00:00:00:14:20' } as const;

/** argv: ifname -> JSON {vid: {arpFrom, echoFrom, echoes, replyTags}} after ARP + 3 ICMP echoes per VLAN. */
const PY_TAGGED_HOST = String.raw`
import json, socket, struct, sys, time
ifname = sys.argv[1]
hosts = {10: bytes.fromhex('02000000' + '0a20'), 20: bytes.fromhex('02000000' + '1420')}
me, vm = socket.inet_aton('10.0.0.20'), socket.inet_aton('10.0.0.5')
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
# The kernel strips the tag into auxdata on receive; ask for it (PACKET_AUXDATA = 8, SOL_PACKET = 263).
s.setsockopt(263, 8, 1)
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return (~t) & 0xffff
def tag(vid, etype): return struct.pack('!HHH', 0x8100, vid, etype)
def recv(deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0: return None
        s.settimeout(left)
        try: data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(64))
        except socket.timeout: return None
        if addr[2] == socket.PACKET_OUTGOING: continue
        vid = None
        for lvl, typ, d in anc:
            if lvl == 263 and typ == 8 and len(d) >= 20:
                st, _, _, _, _, tci, tpid = struct.unpack('IIIHHHH', d[:20])
                if st & (1 << 4): vid = tci & 0xfff
        if vid is None and data[12:14] == b'\x81\x00':
            vid = struct.unpack('!H', data[14:16])[0] & 0xfff; data = data[:12] + data[16:]
        return vid, data
out = {}
for vid, mac in hosts.items():
    r = {'arpFrom': None, 'echoFrom': [], 'echoes': 0, 'replyTags': []}
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac, me, b'\0' * 6, vm)
    s.send(b'\xff' * 6 + mac + tag(vid, 0x0806) + arp + b'\0' * 18)
    deadline = time.monotonic() + 5
    while r['arpFrom'] is None:
        got = recv(deadline)
        if got is None: break
        gv, d = got
        if d[12:14] == b'\x08\x06' and d[20:22] == b'\x00\x02' and d[28:32] == vm:
            r['replyTags'].append(gv); r['arpFrom'] = d[22:28].hex(':')
    if r['arpFrom']:
        dst = bytes.fromhex(r['arpFrom'].replace(':', ''))
        for seq in range(1, 4):
            payload = ('vlan%d-' % vid).encode() * 8
            icmp = struct.pack('!BBHHH', 8, 0, 0, 0x4242, seq) + payload
            icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
            ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0, me, vm)
            ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
            s.send(dst + mac + tag(vid, 0x0800) + ip + icmp)
            deadline = time.monotonic() + 3
            while True:
                got = recv(deadline)
                if got is None: break
                gv, d = got
                if d[12:14] == b'\x08\x00' and d[23] == 1 and d[34] == 0 and d[0:6] == mac:
                    r['echoes'] += 1; r['replyTags'].append(gv); r['echoFrom'].append(d[6:12].hex(':')); break
    out[vid] = r
print(json.dumps(out))
`;

test(
  'two VLANs through one Connector into two segments with identical addressing: 0 frames cross (tshark)',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces') },
  async (t) => {
    const scope = netnsScope(t, 'ckq');
    const [lan, site, dc, hv, vm10, vm20] = (await Promise.all(['lan', 'site', 'dc', 'hv', 'vm10', 'vm20'].map((r) => scope.ns(r)))) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const n = (r: string): string => scope.ifname(r);
    const link = async (a: string, an: string, b: string, bn: string): Promise<void> => {
      await ipIn(a, 'link', 'add', an, 'type', 'veth', 'peer', 'name', bn, 'netns', b);
      await ipIn(a, 'link', 'set', an, 'up');
      await ipIn(b, 'link', 'set', bn, 'up');
    };
    await link(lan, n('lh'), site, n('ls'));
    await link(site, n('sd'), dc, n('ds'));
    await link(dc, n('dh'), hv, n('hd'));
    await link(hv, n('h10'), vm10, n('v10'));
    await link(hv, n('h20'), vm20, n('v20'));
    await ipIn(site, 'addr', 'add', '10.99.0.2/24', 'dev', n('sd'));
    await ipIn(dc, 'addr', 'add', '10.99.0.1/24', 'dev', n('ds'));
    await ipIn(dc, 'addr', 'add', '10.98.0.1/24', 'dev', n('dh'));
    await ipIn(hv, 'addr', 'add', '10.98.0.2/24', 'dev', n('hd'));
    for (const [ns, dev] of [
      [dc, n('dh')],
      [hv, n('hd')],
    ] as const)
      await ipIn(ns, 'link', 'set', dev, 'mtu', '1554');
    await ipIn(site, 'link', 'add', 'br0', 'type', 'bridge');
    await ipIn(site, 'link', 'set', n('ls'), 'master', 'br0');
    await ipIn(site, 'link', 'set', 'br0', 'up');
    for (const [vid, vni, port, vmNs, vmDev] of [
      [10, 110, n('h10'), vm10, n('v10')],
      [20, 120, n('h20'), vm20, n('v20')],
    ] as const) {
      await kernelVtep(hv, { vni, local: '10.98.0.2', remote: '10.98.0.1', dev: n('hd'), ports: [port] });
      await ipIn(vmNs, 'link', 'set', vmDev, 'address', VM_MAC[vid]);
      await ipIn(vmNs, 'addr', 'add', '10.0.0.5/24', 'dev', vmDev);
    }

    const d = tempDir(t, 'ck-vlanq-', true);
    const pki = await createTestPki(d.dir, { serverIps: ['10.99.0.1'] });
    const dev = await pki.client('CN-0001');
    writeJson(d.path('registry.json'), {
      version: 1,
      tenants: {
        acme: {
          segments: {
            lan: { vni: 100, vteps: ['10.98.0.2'] },
            a: { vni: 110, vteps: ['10.98.0.2'] },
            b: { vni: 120, vteps: ['10.98.0.2'] },
          },
        },
      },
      devices: { 'CN-0001': { state: 'claimed', tenant: 'acme', segment: 'lan', vlans: { '10': 'a', '20': 'b' }, updatedAt: '' } },
    });
    writeJson(
      d.path('headend.json'),
      headendConfigDoc(d, pki, { listenHost: '10.99.0.1', listenPort: 8443, vxlanAddress: '10.98.0.1', vxlanPort: 4789, vtepPort: 4789 }),
    );
    const idDir = d.path('identity');
    await exec('mkdir', ['-p', idDir]);
    copyFileSync(dev.keyFile, join(idDir, 'op.key.pem'));
    copyFileSync(dev.certFile, join(idDir, 'op.cert.pem'));
    copyFileSync(pki.dcCa.file, join(idDir, 'dc-ca.pem'));
    const agentConf = d.path('connector.uci');
    writeFileSync(
      agentConf,
      [
        "config agent 'agent'",
        "\tlist headend 'tls://10.99.0.1:8443'",
        "\toption bridge 'br0'",
        `\toption tap_name '${n('tap')}'`,
        `\toption identity_dir '${idDir}'`,
        `\toption status_socket '${d.path('agent.sock')}'`,
        "\toption log_format 'json'",
        "\tlist vlan '10:a'",
        "\tlist vlan '20:b'",
        '',
      ].join('\n'),
    );

    const children: ChildProcess[] = [];
    t.after(async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      scope.cleanup();
      if (process.env['CK_KEEP'] !== '1') d.remove();
    });
    const pcaps: Record<string, string> = {};
    for (const [name, ns, ifname] of [
      ['vm10', hv, n('h10')],
      ['vm20', hv, n('h20')],
      ['lan', site, n('ls')],
    ] as const) {
      pcaps[name] = d.path(`${name}.pcap`);
      const dump = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '--immediate-mode', '-i', ifname, '-U', '-n', '-w', pcaps[name] ?? ''], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(dump);
      await new Promise<void>((resolve) => dump.stderr.on('data', (b: Buffer) => b.toString().includes('listening') && resolve()));
    }

    const headend = await spawnHeadend(d.path('headend.json'), dc);
    children.push(headend.child);
    let agentErr = '';
    const agent = spawn(
      'ip',
      ['netns', 'exec', site, process.execPath, '--import', 'tsx', join(REPO, 'src/agent/cli.ts'), 'run', '--config', agentConf],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(agent);
    agent.stdout.on('data', (b: Buffer) => (agentErr += b.toString()));
    agent.stderr.on('data', (b: Buffer) => (agentErr += b.toString()));
    await waitFor(`three sessions up (agent: ${agentErr.slice(-2000)})`, 30_000, () =>
      headend.lines.filter((l) => l['msg'] === 'session up').length >= 3 ? true : undefined,
    );

    const tool = await nsExec(lan, 'python3', ['-c', PY_TAGGED_HOST, n('lh')], { allowFailure: true });
    assert.equal(tool.code, 0, tool.stderr);
    const res = JSON.parse(tool.stdout) as Record<
      string,
      { arpFrom: string | null; echoFrom: string[]; echoes: number; replyTags: number[] }
    >;
    t.diagnostic(`LAN host results: ${JSON.stringify(res)}`);
    for (const vid of [10, 20] as const) {
      const r = res[String(vid)];
      assert.ok(r, `VLAN ${vid} result`);
      assert.equal(r.arpFrom, VM_MAC[vid], `VLAN ${vid}: 10.0.0.5 resolves to its own segment's VM`);
      assert.equal(r.echoes, 3, `VLAN ${vid}: 3 echo replies`);
      assert.ok(r.echoFrom.every((m) => m === VM_MAC[vid]));
      assert.ok(
        r.replyTags.every((v) => v === vid),
        `VLAN ${vid}: every answer carries tag ${vid}`,
      );
    }

    await new Promise((r) => setTimeout(r, 300));
    for (const c of children.slice(0, 3)) {
      c.kill('SIGINT');
      await new Promise((r) => c.once('exit', r));
    }
    const fields = async (pcap: string, filter = ''): Promise<string[][]> => {
      assert.ok(existsSync(pcap));
      const r = await exec('tshark', [
        '-r',
        pcap,
        ...(filter ? ['-Y', filter] : []),
        '-T',
        'fields',
        '-e',
        'eth.src',
        '-e',
        'eth.dst',
        '-e',
        'vlan.id',
        '-e',
        'data.data',
      ]);
      return r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t'));
    };
    // Each VM's link: its own VLAN's host, never the other's (by MAC and by ICMP payload marker).
    for (const [vid, other] of [
      [10, 20],
      [20, 10],
    ] as const) {
      const all = await fields(pcaps[`vm${vid}`] ?? '');
      const crossed = await fields(
        pcaps[`vm${vid}`] ?? '',
        `eth.addr == ${HOST_MAC[other]} || eth.addr == ${VM_MAC[other]} || frame contains "vlan${other}-"`,
      );
      const own = await fields(pcaps[`vm${vid}`] ?? '', `eth.src == ${HOST_MAC[vid]}`);
      t.diagnostic(`vm${vid} link: ${all.length} frames, ${own.length} from the VLAN ${vid} host, ${crossed.length} of VLAN ${other}`);
      assert.ok(own.length >= 4, `vm${vid} saw its host's ARP and echoes`);
      assert.equal(crossed.length, 0, `0 frames of VLAN ${other} on the VLAN ${vid} segment`);
      assert.equal(all.filter((r) => r[2]).length, 0, 'no tag reaches the segment');
    }
    // The LAN link: every frame from a VM carries its own VLAN's tag.
    for (const vid of [10, 20] as const) {
      const fromVm = await fields(pcaps['lan'] ?? '', `eth.src == ${VM_MAC[vid]}`);
      assert.ok(fromVm.length >= 4);
      assert.ok(
        fromVm.every((r) => r[2] === String(vid)),
        `frames of VM ${vid} on the LAN are tagged ${vid}`,
      );
    }
  },
);
