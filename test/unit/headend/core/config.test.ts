// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHeadendConfig } from '../../../../src/headend/core/config.js';
import { hasCode } from '../../../../src/shared/errors.js';

const minimal = {
  tls: { cert: 'headend.crt', key: 'headend.key', deviceCa: '/etc/ck/device-ca.pem' },
  registry: 'registry.json',
  auditLog: 'audit.jsonl',
};

test('defaults apply and relative paths resolve against the config directory', () => {
  const c = parseHeadendConfig(minimal, '/srv/headend');
  assert.equal(c.listen.port, 443);
  assert.equal(c.vxlan.port, 4789);
  assert.equal(c.vxlan.vtepPort, 4789);
  assert.equal(c.vxlan.coalesce, true, 'runs toward TLS sessions as OFFLOAD records unless told otherwise');
  assert.equal(c.tls.certFile, '/srv/headend/headend.crt');
  assert.equal(c.tls.deviceCaFile, '/etc/ck/device-ca.pem');
  assert.equal(c.metrics, null);
  assert.equal(c.minVtepPathMtu, 1550);
  assert.equal(c.mac.ageMs, 300_000);
  assert.equal(c.evpn, null, 'flood-and-learn unless the EVPN feed is configured');
  assert.ok(Object.isFrozen(c));
});

test('errors name the key', () => {
  for (const [doc, key] of [
    [{ ...minimal, tls: { cert: 'a', key: 'b' } }, 'tls.deviceCa'],
    [{ ...minimal, listen: { port: 70000 } }, 'listen.port'],
    [{ ...minimal, session: { keepaliveMs: 5000, deadAfterMs: 4000 } }, 'session.deadAfterMs'],
    [{ ...minimal, listne: {} }, 'listne'],
  ] as const) {
    assert.throws(
      () => parseHeadendConfig(doc, '/'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && (e as Error).message.includes(`"${key}"`),
    );
  }
});

test('the EVPN feed: a port template, refreshed every 60 s unless told', () => {
  assert.deepEqual(parseHeadendConfig({ ...minimal, evpn: { port: 'ev{vni}' } }, '/').evpn, { port: 'ev{vni}', refreshS: 60 });
  assert.throws(() => parseHeadendConfig({ ...minimal, evpn: { port: 'ev{vni}', refreshS: 1 } }, '/'), /evpn\.refreshS/);
});

test('metrics address defaults to loopback', () => {
  const c = parseHeadendConfig({ ...minimal, metrics: { port: 9464 } }, '/');
  assert.deepEqual(c.metrics, { host: '127.0.0.1', port: 9464 });
});

test('an unknown key at any depth is refused with its JSON path and the closest known key', () => {
  for (const [doc, re] of [
    [{ ...minimal, listne: {} }, /^config "listne": unknown key; did you mean listen\?/],
    [{ ...minimal, session: { keepaliveMS: 1000 } }, /^config "session.keepaliveMS": unknown key; did you mean keepaliveMs\?/],
    [{ ...minimal, tls: { ...minimal.tls, devicCa: 'x' } }, /^config "tls.devicCa": unknown key; did you mean deviceCa\?/],
  ] as const) {
    assert.throws(
      () => parseHeadendConfig(doc, '/'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && re.test((e as Error).message),
    );
  }
});

test('the L2 engine and workers: userspace and one process by default; what the kernel engine and workers need', () => {
  const c = parseHeadendConfig(minimal, '/srv/headend');
  assert.deepEqual(c.l2, { engine: 'userspace', prefix: 'ck' });
  assert.equal(c.workers, 1);
  const k = parseHeadendConfig({ ...minimal, l2: { engine: 'kernel', prefix: 'dr1' }, workers: 4 }, '/srv/headend');
  assert.deepEqual([k.l2.engine, k.l2.prefix, k.workers], ['kernel', 'dr1', 4]);
  for (const [doc, key, text] of [
    [{ ...minimal, workers: 2 }, 'workers', /l2.engine "kernel"/],
    [{ ...minimal, l2: { engine: 'kernel' }, vxlan: { port: 4790 } }, 'vxlan.port', /vtepPort/],
    [{ ...minimal, l2: { engine: 'kernel' }, evpn: { port: 'vx{vni}' } }, 'evpn', /FRR/],
    [{ ...minimal, l2: { prefix: 'toolong' } }, 'l2.prefix', /1 to 4/],
    [{ ...minimal, l2: { engine: 'ovs' } }, 'l2.engine', /./],
  ] as const) {
    assert.throws(
      () => parseHeadendConfig(doc, '/x'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && (e as Error).message.includes(key) && text.test((e as Error).message),
      key,
    );
  }
});

test('vxlan.coalesce: false turns the merging off; anything but a boolean is refused by name', () => {
  assert.equal(parseHeadendConfig({ ...minimal, vxlan: { coalesce: false } }, '/x').vxlan.coalesce, false);
  assert.throws(
    () => parseHeadendConfig({ ...minimal, vxlan: { coalesce: 'yes' } }, '/x'),
    (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && (e as Error).message.includes('vxlan.coalesce'),
  );
});

test('datagram.lanes: at most 4 lanes a session by default, 1 to 8 when set, anything else refused by name', () => {
  assert.equal(parseHeadendConfig(minimal, '/x').datagram?.lanes, 4);
  assert.equal(parseHeadendConfig({ ...minimal, datagram: { lanes: 1 } }, '/x').datagram?.lanes, 1);
  for (const lanes of [0, 9, 'many'])
    assert.throws(
      () => parseHeadendConfig({ ...minimal, datagram: { lanes } }, '/x'),
      (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && (e as Error).message.includes('lanes'),
    );
});

test('sendThreads: off unless set; anything but a boolean is refused by name', () => {
  assert.equal(parseHeadendConfig(minimal, '/x').sendThreads, false);
  assert.equal(parseHeadendConfig({ ...minimal, sendThreads: true }, '/x').sendThreads, true);
  assert.throws(
    () => parseHeadendConfig({ ...minimal, sendThreads: 'auto' }, '/x'),
    (e: unknown) => hasCode(e, 'CK_ERR_CONFIG_INVALID') && (e as Error).message.includes('sendThreads'),
  );
});
