// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAgentConfig } from '../../../../src/agent/core/config.js';
import { ConfigError } from '../../../../src/shared/errors.js';

const MIN = `config agent 'agent'\n\tlist headend 'tls://dc1.example.net'\n`;

test('minimal config gets documented defaults', () => {
  const c = parseAgentConfig(MIN);
  assert.equal(c.headends[0]?.host, 'dc1.example.net:443');
  assert.equal(c.bridge, 'br-lan');
  assert.equal(c.tapName, 'tap-dr');
  assert.equal(c.keepaliveMs, 5000);
  assert.equal(c.deadAfterMs, 15000);
  assert.equal(c.l2.proxyArp, true);
  assert.equal(c.l2.allowDhcpFromTunnel, false);
  assert.equal(c.l2.splitBrainBlock, true);
  assert.deepEqual(c.datagram, { enabled: true, port: undefined, lanes: 1 }, 'datagrams asked for by default, one lane');
  assert.deepEqual(parseAgentConfig(MIN + `\toption datagram '1'\n\toption datagram_port '4443'\n`).datagram, {
    enabled: true,
    port: 4443,
    lanes: 1,
  });
  assert.deepEqual(
    parseAgentConfig(MIN + `\toption datagram '0'\n`).datagram,
    { enabled: false, port: undefined, lanes: 1 },
    'TLS only when turned off',
  );
  assert.equal(parseAgentConfig(MIN + `\toption datagram_lanes '4'\n`).datagram.lanes, 4);
  assert.throws(() => parseAgentConfig(MIN + `\toption datagram_lanes '9'\n`), /datagram_lanes/, 'at most 8 lanes');
  assert.throws(() => parseAgentConfig(MIN + `\toption datagram_lanes '0'\n`), /datagram_lanes/);
  assert.equal(c.lanCoalesce, true, 'LAN coalescing on by default');
  assert.equal(parseAgentConfig(MIN + `\toption lan_coalesce '0'\n`).lanCoalesce, false);
  assert.throws(() => parseAgentConfig(MIN + `\toption lan_coalesce 'maybe'\n`), /lan_coalesce/);
  assert.equal(c.sendThread, false, 'send threads off by default');
  assert.equal(parseAgentConfig(MIN + `\toption send_thread '1'\n`).sendThread, true);
  assert.ok(Object.isFrozen(c));
});

test('errors name the section.option and what it accepts', () => {
  const cases: [string, string][] = [
    [`config agent 'agent'\n\tlist headend 'https://x'\n`, 'agent.headend'],
    [MIN + `\toption keepalive_s 'often'\n`, 'agent.keepalive_s'],
    [MIN + `\toption tap_name 'a-name-that-is-far-too-long'\n`, 'agent.tap_name'],
    [MIN + `config l2 'l2'\n\toption proxy_arp 'maybe'\n`, 'l2.proxy_arp'],
    [MIN + `config l2 'l2'\n\toption proxy_arpp '1'\n`, 'l2.proxy_arpp'],
    [MIN + `config proxy 'proxy'\n`, 'proxy'],
    [MIN + `\tlist own_mac '02:00:00:00:00:01'\n`, 'agent.own_mac'],
    [MIN + `config l2 'l2'\n\tlist own_mac 'zz:zz'\n`, 'l2.own_mac'],
    [MIN + `config l2 'l2'\n\tlist own_ipp '192.0.2.1'\n`, 'l2.own_ipp'],
    [MIN + `\toption enabled 'maybe'\n`, 'agent.enabled'],
  ];
  for (const [text, k] of cases) {
    assert.throws(
      () => parseAgentConfig(text),
      (e: unknown) => e instanceof ConfigError && e.key === k,
      k,
    );
  }
});

test('dead-peer timeout cannot be shorter than the keepalive', () => {
  assert.throws(() => parseAgentConfig(MIN + `\toption keepalive_s '10'\n\toption dead_after_s '5'\n`), ConfigError);
  assert.equal(parseAgentConfig(MIN + `\toption keepalive_s '10'\n`).deadAfterMs, 30000);
});

test('with a second headend the dead-peer defaults find a dead one within 2 s; explicit values win', () => {
  const two = MIN + `\tlist headend 'tls://dc2.example.net'\n`;
  const c = parseAgentConfig(two);
  assert.deepEqual([c.keepaliveMs, c.deadAfterMs], [1000, 2000]);
  assert.equal(parseAgentConfig(two + `\toption keepalive_s '3'\n`).deadAfterMs, 4000);
  assert.equal(parseAgentConfig(two + `\toption dead_after_s '15'\n`).deadAfterMs, 15000);
});

test('the OTA channel needs an mqtts broker and at least one release key slot', () => {
  const ota = (lines: string) => parseAgentConfig(MIN + `config ota 'ota'\n${lines}`);
  assert.throws(
    () => ota(`\toption broker 'mqtt://broker:1883'\n\toption pubkey_slot0 '/etc/connector/ota-0.pub'\n`),
    (e: unknown) => e instanceof ConfigError && e.key === 'ota.broker',
  );
  assert.throws(
    () => ota(`\toption broker 'mqtts://broker:8883'\n`),
    (e: unknown) => e instanceof ConfigError && e.key === 'ota.pubkey_slot0',
  );
  const c = ota(`\toption broker 'mqtts://broker:8883'\n\toption pubkey_slot0 '/k0'\n\toption pubkey_slot1 '/k1'\n`);
  assert.deepEqual(c.ota.pubkeySlots, ['/k0', '/k1']);
  assert.equal(c.ota.slotsDir, '/opt/connector');
  assert.equal(c.ota.healthDeadlineMs, 120_000);
  assert.equal(parseAgentConfig(MIN).ota.broker, undefined, 'no broker: no OTA channel');
});

test('l2 lists and options both reach the policy; no headend is allowed (the unit enrolls and waits)', () => {
  const c = parseAgentConfig(
    `config agent 'agent'\nconfig l2 'l2'\n\tlist own_ip '192.0.2.1'\n\tlist own_ip '192.0.2.2'\n\toption own_mac '02:00:00:00:00:01'\n`,
  );
  assert.equal(c.headends.length, 0);
  assert.equal(c.l2.ownIpv4.length, 2);
  assert.equal(c.l2.ownMacs.length, 1);
});

test('an unknown option in any section is refused with its name, its section and the closest known option', () => {
  const cases: [string, string, RegExp][] = [
    [
      `config agent 'main'\n\toption tap_nam 'tap-x'\n`,
      'agent.tap_nam',
      /^config agent 'main', option tap_nam: unknown option; did you mean tap_name\?/,
    ],
    [
      MIN + `config enroll 'enroll'\n\toption min_tim '0'\n`,
      'enroll.min_tim',
      /config enroll 'enroll', option min_tim: .*did you mean min_time\?/,
    ],
    [MIN + `config ota 'ota'\n\toption brokr 'mqtts://b:8883'\n`, 'ota.brokr', /did you mean broker\?/],
    [MIN + `config l2 'l2'\n\toption proxy_arpp '1'\n`, 'l2.proxy_arpp', /config l2 'l2', option proxy_arpp: .*did you mean proxy_arp\?/],
    [MIN + `config l2 'l2'\n\tlist own_ipp '192.0.2.1'\n`, 'l2.own_ipp', /did you mean own_ip\?/],
    [MIN + `config network 'network'\n\toption mdoe 'one-port'\n`, 'network.mdoe', /did you mean mode\?/],
    [MIN + `\toption zzzzzzzz '1'\n`, 'agent.zzzzzzzz', /unknown option; known options: enabled, headend, /],
    [MIN + `config agnet 'x'\n`, 'agnet', /^config agnet 'x': unknown section type; did you mean agent\?/],
    [MIN + `config agent 'second'\n`, 'agent', /more than one `config agent` section/],
    [MIN + `\tlist bridge 'br-lan'\n`, 'agent.bridge', /`option`, not `list`/],
  ];
  for (const [text, k, re] of cases) {
    assert.throws(
      () => parseAgentConfig(text),
      (e: unknown) => e instanceof ConfigError && e.key === k && re.test(e.message),
      k,
    );
  }
});

test('values keep their UCI meaning: an empty option is unset, booleans take the UCI spellings', () => {
  const c = parseAgentConfig(
    MIN + `\toption tap_name ''\n\toption enabled 'disabled'\nconfig network 'network'\n\toption mode 'two-port'\n`,
  );
  assert.equal(c.tapName, 'tap-dr');
  assert.equal(c.enabled, false);
  assert.equal(parseAgentConfig(`config agent\n\toption headend 'tls://h:8443'\n`).headends[0]?.port, '8443');
});

test('the shipped /etc/config/connector parses', () => {
  const shipped = readFileSync(new URL('../../../../firmware/rootfs-overlay/etc/config/connector', import.meta.url), 'utf8');
  assert.equal(parseAgentConfig(shipped).tapName, 'tap-dr');
});
