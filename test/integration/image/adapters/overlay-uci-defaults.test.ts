// SPDX-License-Identifier: UNLICENSED
// firmware/rootfs-overlay/etc/uci-defaults/99-connector against a STAND-IN `uci` (uci-stand-in.mjs) seeded
// with OpenWrt 24.10's stock R3S network/dhcp/firewall config: the script must make the unit transparent,
// commit what it changed, and leave the same state when it runs a second time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../../helpers/tmp.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const SCRIPT = join(REPO, 'firmware/rootfs-overlay/etc/uci-defaults/99-connector');
const STAND_IN = fileURLToPath(new URL('./uci-stand-in.mjs', import.meta.url));

type Opts = Record<string, string | string[]>;
type Section = { name: string; type: string; options: Opts };

// What an R3S shows after the first boot of stock OpenWrt 24.10 (board.d: lan eth1, wan eth0).
const STOCK: Record<string, Section[]> = {
  network: [
    { name: 'loopback', type: 'interface', options: { device: 'lo', proto: 'static', ipaddr: '127.0.0.1', netmask: '255.0.0.0' } },
    { name: 'globals', type: 'globals', options: { ula_prefix: 'fd12:3456:789a::/48' } },
    { name: 'cfg030f15', type: 'device', options: { name: 'br-lan', type: 'bridge', ports: ['eth1'] } },
    {
      name: 'lan',
      type: 'interface',
      options: { device: 'br-lan', proto: 'static', ipaddr: '192.168.1.1', netmask: '255.255.255.0', ip6assign: '60' },
    },
    { name: 'wan', type: 'interface', options: { device: 'eth0', proto: 'dhcp' } },
    { name: 'wan6', type: 'interface', options: { device: 'eth0', proto: 'dhcpv6' } },
  ],
  dhcp: [
    { name: 'cfg01411c', type: 'dnsmasq', options: { domainneeded: '1', localise_queries: '1' } },
    {
      name: 'lan',
      type: 'dhcp',
      options: { interface: 'lan', start: '100', limit: '150', leasetime: '12h', dhcpv4: 'server', dhcpv6: 'server', ra: 'server' },
    },
    { name: 'wan', type: 'dhcp', options: { interface: 'wan', ignore: '1' } },
    { name: 'odhcpd', type: 'odhcpd', options: { maindhcp: '0', leasefile: '/tmp/hosts/odhcpd' } },
  ],
  firewall: [
    { name: 'cfg01e63d', type: 'defaults', options: { syn_flood: '1', input: 'REJECT', output: 'ACCEPT', forward: 'REJECT' } },
    { name: 'cfg02dc81', type: 'zone', options: { name: 'lan', network: ['lan'], input: 'ACCEPT', output: 'ACCEPT', forward: 'ACCEPT' } },
    {
      name: 'cfg03dc81',
      type: 'zone',
      options: { name: 'wan', network: ['wan', 'wan6'], input: 'REJECT', output: 'ACCEPT', forward: 'REJECT', masq: '1' },
    },
    { name: 'cfg04ad58', type: 'forwarding', options: { src: 'lan', dest: 'wan' } },
    { name: 'cfg0592bd', type: 'rule', options: { name: 'Allow-DHCP-Renew', src: 'wan', proto: 'udp', dest_port: '68', target: 'ACCEPT' } },
    {
      name: 'cfg0692bd',
      type: 'rule',
      options: { name: 'Allow-Ping', src: 'wan', proto: 'icmp', icmp_type: 'echo-request', target: 'ACCEPT' },
    },
    { name: 'cfg0792bd', type: 'rule', options: { name: 'Allow-IPSec-ESP', src: 'wan', dest: 'lan', proto: 'esp', target: 'ACCEPT' } },
  ],
};

function connectorConfig(mode: string): Section[] {
  return [
    { name: 'agent', type: 'agent', options: { enabled: '1', bridge: 'br-lan', tap_name: 'tap-dr' } },
    { name: 'network', type: 'network', options: { mode } },
  ];
}

interface Device {
  dir: string;
  run(): { status: number | null; stderr: string };
  config(name: string): Section[];
  snapshot(): string;
}

function device(t: { after(fn: () => void): void }, mode: string): Device {
  const dir = tempDir(t, 'ck-uci-').dir;
  const store = join(dir, 'store');
  const bin = join(dir, 'bin');
  for (const d of [store, bin]) spawnSync('mkdir', ['-p', d]);
  for (const [name, sections] of Object.entries({ ...STOCK, connector: connectorConfig(mode) })) {
    writeFileSync(join(store, name), JSON.stringify({ sections }));
  }
  writeFileSync(join(bin, 'uci'), `#!/bin/sh\nexec "${process.execPath}" "${STAND_IN}" "$@"\n`);
  writeFileSync(join(bin, 'logger'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'uci'), 0o755);
  chmodSync(join(bin, 'logger'), 0o755);
  return {
    dir,
    run() {
      const r = spawnSync('sh', [SCRIPT], {
        env: { PATH: `${bin}:/usr/bin:/bin`, UCI_STANDIN_DIR: store },
        encoding: 'utf8',
      });
      return { status: r.status, stderr: r.stderr };
    },
    config(name) {
      return (JSON.parse(readFileSync(join(store, name), 'utf8')) as { sections: Section[] }).sections;
    },
    snapshot() {
      return ['network', 'dhcp', 'firewall', 'connector'].map((n) => readFileSync(join(store, n), 'utf8')).join('\n');
    },
  };
}

const sec = (secs: Section[], name: string): Section | undefined => secs.find((s) => s.name === name);

test('uci-defaults: one-port mode makes the unit a transparent DHCP client with the TAP in br-lan', (t) => {
  const d = device(t, 'one-port');
  const r = d.run();
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(d.dir, 'store', '.staged')), [], 'every change was committed');

  const net = d.config('network');
  const br = net.find((s) => s.type === 'device' && s.options['name'] === 'br-lan');
  assert.deepEqual(br?.options['ports'], ['eth1', 'tap-dr']);
  const lan = sec(net, 'lan');
  assert.equal(lan?.options['proto'], 'dhcp');
  assert.equal(lan?.options['ipaddr'], undefined, 'no static 192.168.1.1');
  assert.equal(lan?.options['ip6assign'], undefined);
  assert.equal(sec(net, 'lan6')?.options['proto'], 'dhcpv6');
  assert.equal(br?.options['ipv6'], undefined, 'IPv6 stays on: the management address may be IPv6');

  const dhcp = sec(d.config('dhcp'), 'lan');
  assert.equal(dhcp?.options['ignore'], '1', 'no DHCPv4 server');
  assert.equal(dhcp?.options['ra'], 'disabled', 'no router advertisements');
  assert.equal(dhcp?.options['dhcpv6'], 'disabled');

  const fw = d.config('firewall');
  for (const z of fw.filter((s) => s.type === 'zone')) {
    assert.equal(z.options['input'], 'REJECT', `zone ${String(z.options['name'])} input`);
    assert.equal(z.options['forward'], 'REJECT', `zone ${String(z.options['name'])} forward`);
  }
  assert.equal(fw.filter((s) => s.type === 'forwarding').length, 0, 'nothing forwarded');
  const rules = fw.filter((s) => s.type === 'rule');
  assert.deepEqual(rules.map((s) => s.name).sort(), ['ck_dhcp_renew', 'ck_dhcpv6_client', 'ck_icmpv6_nd']);
  for (const rule of rules) {
    assert.notEqual(rule.options['proto'], 'tcp', 'no TCP port is opened');
    assert.ok(['68', '546', undefined].includes(rule.options['dest_port'] as string | undefined), 'only DHCP client ports');
  }
});

test('uci-defaults: a second run changes nothing and adds the TAP only once', (t) => {
  const d = device(t, 'one-port');
  assert.equal(d.run().status, 0);
  const first = d.snapshot();
  assert.equal(d.run().status, 0);
  assert.equal(d.snapshot(), first);
  const br = d.config('network').find((s) => s.options['name'] === 'br-lan');
  assert.deepEqual(br?.options['ports'], ['eth1', 'tap-dr']);
});

test('uci-defaults: two-port mode leaves br-lan without an address and keeps the WAN DHCP client', (t) => {
  const d = device(t, 'two-port');
  assert.equal(d.run().status, 0);
  const net = d.config('network');
  assert.equal(sec(net, 'lan')?.options['proto'], 'none');
  assert.equal(sec(net, 'lan6'), undefined);
  assert.equal(net.find((s) => s.options['name'] === 'br-lan')?.options['ipv6'], '0', 'no IPv6 address of its own on the customer LAN');
  assert.equal(sec(net, 'wan')?.options['proto'], 'dhcp');
  const first = d.snapshot();
  assert.equal(d.run().status, 0);
  assert.equal(d.snapshot(), first, 'idempotent in two-port mode too');
});

test('uci-defaults: switching one-port -> two-port by re-running removes the LAN DHCP client', (t) => {
  const d = device(t, 'one-port');
  assert.equal(d.run().status, 0);
  const store = join(d.dir, 'store');
  writeFileSync(join(store, 'connector'), JSON.stringify({ sections: connectorConfig('two-port') }));
  assert.equal(d.run().status, 0);
  const net = d.config('network');
  assert.equal(sec(net, 'lan')?.options['proto'], 'none');
  assert.equal(sec(net, 'lan6'), undefined);
});

test('overlay scripts pass sh -n', () => {
  for (const f of ['etc/init.d/connector', 'etc/uci-defaults/99-connector']) {
    const r = spawnSync('sh', ['-n', join(REPO, 'firmware/rootfs-overlay', f)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});
