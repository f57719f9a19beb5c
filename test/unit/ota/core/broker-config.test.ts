// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasCode } from '../../../../src/shared/errors.js';
import { generateBrokerConfig } from '../../../../src/ota/core/broker-config.js';

const opts = {
  cafile: '/t/ca.pem',
  certfile: '/t/s.pem',
  keyfile: '/t/s.key',
  aclFile: '/t/acl',
  host: '0.0.0.0',
  port: 8883,
  controllerUsers: ['connector-controller'],
};

test('the config binds identity to certificate and confines devices to their own subtree', () => {
  const { mosquittoConf, acl } = generateBrokerConfig(opts);
  for (const l of [
    'per_listener_settings false',
    'allow_anonymous false',
    'listener 8883 0.0.0.0',
    'require_certificate true',
    'use_identity_as_username true',
    'use_username_as_clientid true',
    'tls_version tlsv1.3',
    'acl_file /t/acl',
    'cafile /t/ca.pem',
  ]) {
    assert.ok(mosquittoConf.split('\n').includes(l), l);
  }
  const lines = acl.split('\n');
  assert.ok(lines.includes('user connector-controller'));
  assert.ok(lines.includes('topic readwrite connector/v1/#'));
  assert.ok(lines.includes('pattern write connector/v1/%u/status'));
  assert.ok(lines.includes('pattern read connector/v1/%u/jobs/+'));
  assert.ok(lines.includes('pattern write connector/v1/%u/job-state'));
  assert.ok(lines.includes('pattern write connector/v1/%u/health'));
  assert.ok(!lines.some((l) => l.startsWith('user') && l !== 'user connector-controller'), 'no observer unless asked for');
  const observed = generateBrokerConfig({ ...opts, observerUsers: ['connector-console'] }).acl.split('\n');
  const console = observed.slice(observed.indexOf('user connector-console'));
  assert.deepEqual(console.slice(1, 4), [
    'topic read connector/v1/+/status',
    'topic read connector/v1/+/health',
    'topic read connector/v1/+/job-state',
  ]);
  assert.ok(!console.slice(1, console.indexOf('')).some((l) => /write/.test(l)), 'an observer writes nothing');
  assert.ok(!lines.some((l) => l.includes('jobs/+/state')), 'per-job state topics only with legacyJobState');
  // Nothing grants devices wildcard access outside %u.
  assert.ok(!lines.some((l) => l.startsWith('pattern') && !l.includes('/%u/')));
  const legacy = generateBrokerConfig({ ...opts, legacyJobState: true }).acl.split('\n');
  assert.ok(legacy.includes('pattern write connector/v1/%u/jobs/+/state'));
  assert.ok(legacy.includes('pattern write connector/v1/%u/job-state'));
});

test('values that would inject config lines are refused', () => {
  assert.throws(
    () => generateBrokerConfig({ ...opts, cafile: '/t/ca.pem\nallow_anonymous true' }),
    (e) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
  );
  assert.throws(
    () => generateBrokerConfig({ ...opts, controllerUsers: ['a\ntopic readwrite #'] }),
    (e) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
  );
  assert.throws(
    () => generateBrokerConfig({ ...opts, port: 70000 }),
    (e) => hasCode(e, 'CK_ERR_CONFIG_INVALID'),
  );
});
