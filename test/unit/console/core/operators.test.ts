// SPDX-License-Identifier: UNLICENSED
// Who may see and change what: the three roles, and the operators file's checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canChange, canSee, parseOperators, visibleTenants } from '../../../../src/console/core/operators.js';
import { fleetView } from '../../../../src/console/core/fleet.js';
import { parseRegistry } from '../../../../src/shared/registry/registry.js';
import { LoginGuard } from '../../../../src/console/core/login-guard.js';

const HASH = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=';
const ops = parseOperators(
  {
    operators: [
      { name: 'alice', role: 'admin', password: HASH },
      { name: 'm', role: 'msp', tenants: ['acme'], password: HASH },
      { name: 'r', role: 'read-only', password: HASH },
    ],
  },
  'ops.json',
);
const [admin, msp, ro] = ops as [(typeof ops)[0], (typeof ops)[0], (typeof ops)[0]];

test('roles: admin sees and changes all; msp only its tenants; read-only sees all and changes nothing', () => {
  assert.equal(canSee(admin, 'globex'), true);
  assert.equal(canChange(admin, undefined), true);
  assert.equal(canSee(msp, 'acme'), true);
  assert.equal(canSee(msp, 'globex'), false);
  assert.equal(canSee(msp, undefined), false, 'unclaimed units are not listed to an msp');
  assert.equal(canChange(msp, 'acme'), true);
  assert.equal(canChange(msp, 'globex'), false);
  assert.equal(canSee(ro, 'globex'), true);
  assert.equal(canChange(ro, 'acme'), false);
  assert.deepEqual(visibleTenants(msp, ['acme', 'globex']), ['acme']);
});

test('the operators file: duplicate names, an msp without tenants and a plain-text password are refused', () => {
  assert.throws(
    () =>
      parseOperators(
        {
          operators: [
            { name: 'a', role: 'admin', password: HASH },
            { name: 'a', role: 'admin', password: HASH },
          ],
        },
        'f',
      ),
    /appears twice/,
  );
  assert.throws(() => parseOperators({ operators: [{ name: 'm', role: 'msp', password: HASH }] }, 'f'), /needs at least one tenant/);
  assert.throws(() => parseOperators({ operators: [{ name: 'a', role: 'admin', password: 'hunter2' }] }, 'f'), /scrypt hash/);
  assert.throws(() => parseOperators({ operators: [{ name: 'a', role: 'root', password: HASH }] }, 'f'), /operators\[0\]\.role/);
  assert.throws(() => parseOperators({ operators: [{ name: 'a', role: 'admin' }] }, 'f'), /needs a password, a certificate/);
  assert.throws(() => parseOperators({ operators: [{ name: 'a', role: 'admin', certSha256: 'AB:CD' }] }, 'f'), /64 lowercase hex/);
  const [certOnly] = parseOperators({ operators: [{ name: 'a', role: 'admin', certSha256: 'ab'.repeat(32) }] }, 'f');
  assert.equal(certOnly?.password, null);
  assert.equal(certOnly?.certSha256, 'ab'.repeat(32));
});

test('the fleet view joins the registry with live sessions and hides other tenants from an msp', () => {
  const reg = parseRegistry({
    version: 1,
    tenants: { acme: { segments: { lan: { vni: 100, vteps: [] } } }, globex: { segments: { lan: { vni: 200, vteps: [] } } } },
    devices: {
      'A-1': { state: 'claimed', tenant: 'acme', updatedAt: '2026-01-01T00:00:00Z' },
      'G-1': { state: 'claimed', tenant: 'globex', updatedAt: '2026-01-01T00:00:00Z' },
      'U-1': { state: 'allowed', updatedAt: '2026-01-01T00:00:00Z' },
    },
    denylist: [],
  });
  const live = [
    {
      serial: 'A-1',
      tenant: 'acme',
      segment: 'lan',
      vni: 100,
      state: 'up',
      remote: '203.0.113.1:5000',
      site: 's',
      agentVersion: '1',
      startedAtMs: 5,
      bytesIn: 1,
      bytesOut: 2,
      headend: 'h1',
    },
  ];
  const all = fleetView(reg, live, admin);
  assert.deepEqual(
    all.map((u) => [u.serial, u.online, u.headend]),
    [
      ['A-1', true, 'h1'],
      ['G-1', false, null],
      ['U-1', false, null],
    ],
  );
  assert.deepEqual(
    fleetView(reg, live, msp).map((u) => u.serial),
    ['A-1'],
  );
});

test('login guard: five failures lock a name out, doubling; another name from another address is not held', () => {
  const g = new LoginGuard({ maxFailures: 5, windowMs: 60_000, lockoutMs: 1_000, maxLockoutMs: 10_000, maxKeys: 100 });
  for (let i = 0; i < 4; i++) g.failed('alice', '10.0.0.1', 1_000 + i);
  assert.equal(g.retryAfterMs('alice', '10.0.0.9', 1_010), 0, 'four failures: not yet');
  g.failed('alice', '10.0.0.1', 1_010);
  assert.equal(g.retryAfterMs('alice', '10.0.0.9', 1_010), 1_000, 'the name is held from any address');
  assert.equal(g.retryAfterMs('bob', '10.0.0.1', 1_010), 1_000, 'the address is held for any name');
  assert.equal(g.retryAfterMs('bob', '10.0.0.2', 1_010), 0);
  g.failed('alice', '10.0.0.1', 2_100);
  assert.equal(g.retryAfterMs('alice', '10.0.0.9', 2_100), 2_000, 'the lockout doubles');
  g.succeeded('alice');
  assert.equal(g.retryAfterMs('alice', '10.0.0.9', 2_100), 0, 'a success clears the name');
});
