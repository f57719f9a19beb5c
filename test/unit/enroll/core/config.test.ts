// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEstServerConfig } from '../../../../src/enroll/core/config.js';
import { ConfigError } from '../../../../src/shared/errors.js';

const minimal = {
  tlsCertFile: 'est.crt',
  tlsKeyFile: 'est.key',
  factoryCaFiles: ['factory-ca.pem'],
  deviceCaCertFile: '/etc/ck/device-ca.pem',
  deviceCaKeyFile: 'device-ca.key',
  registryFile: 'registry.json',
  issuanceLogFile: 'issued.jsonl',
};

test('defaults apply and relative paths resolve against the config directory', () => {
  const c = parseEstServerConfig(minimal, '/srv/est');
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.port, 8443);
  assert.equal(c.certLifetimeS, 30 * 24 * 3600);
  assert.equal(c.retryAfterS, 60);
  assert.equal(c.backdateS, 300);
  assert.deepEqual(c.factoryCaFiles, ['/srv/est/factory-ca.pem']);
  assert.equal(c.deviceCaCertFile, '/etc/ck/device-ca.pem');
  assert.equal(c.deviceCaChainFile, undefined);
  assert.ok(Object.isFrozen(c));
});

test('errors name the key; unknown keys get the closest known one', () => {
  for (const [doc, key, re] of [
    [{ ...minimal, factoryCaFiles: [] }, 'factoryCaFiles', /non-empty/],
    [{ ...minimal, factoryCaFiles: ['a', 3] }, 'factoryCaFiles[1]', /file path/],
    [{ ...minimal, tlsKeyFile: '' }, 'tlsKeyFile', /file path/],
    [{ ...minimal, port: 70000 }, 'port', /0 to 65535/],
    [{ ...minimal, certLifetimeS: 59 }, 'certLifetimeS', /60 to/],
    [{ ...minimal, retryAfterSec: 5 }, 'retryAfterSec', /did you mean retryAfterS\?/],
    [[], '(root)', /object/],
  ] as const) {
    assert.throws(
      () => parseEstServerConfig(doc, '/'),
      (e: unknown) => e instanceof ConfigError && e.key === key && re.test(e.message),
      key,
    );
  }
});
