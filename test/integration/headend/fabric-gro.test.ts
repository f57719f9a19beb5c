// SPDX-License-Identifier: UNLICENSED
// The headend says at start when the interface its VTEPs' VXLAN arrives on reads without GRO (a veth's
// default; a physical NIC's is on), with the command that fixes it, and stays quiet once it is on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exec } from '../../../src/shared/exec.js';
import { ipIn } from '../../../src/lab/adapters/netns.js';
import { fabricGro } from '../../../src/headend/adapters/fabric-gro.js';
import { loadTapAddon, type TapAddon } from '../../../src/shared/native/addon.js';
import { isRoot, netnsScope } from '../../helpers/netns.js';
import { createTestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import { headendConfigDoc, registryDoc, spawnHeadend, writeJson } from './adapters/fixtures.js';

test('fabricGro: the loopback interface answers; what cannot be asked is unknown with a reason', () => {
  assert.deepEqual(fabricGro('127.0.0.1'), { state: 'on', ifname: 'lo' });
  assert.deepEqual(fabricGro('0.0.0.0'), { state: 'unknown', reason: 'vxlan.localAddress is a wildcard' });
  assert.deepEqual(fabricGro('192.0.2.77'), { state: 'unknown', reason: 'no running interface holds 192.0.2.77' });
  const old = (): TapAddon => {
    const { netdevGro: _absent, ...rest } = loadTapAddon();
    return rest;
  };
  assert.deepEqual(fabricGro('127.0.0.1', old), { state: 'unknown', reason: 'the native addon predates netdevGro' });
  const broken = (): TapAddon => {
    throw new Error('TAP addon not found');
  };
  assert.deepEqual(fabricGro('127.0.0.1', broken), { state: 'unknown', reason: 'TAP addon not found' });
});

test('netdevGro refuses a name no interface may have, and names the missing one', () => {
  const { netdevGro } = loadTapAddon();
  assert.ok(netdevGro, 'this build has netdevGro');
  assert.throws(() => netdevGro(''), /1-15 bytes/);
  assert.throws(() => netdevGro('x'.repeat(16)), /1-15 bytes/);
  assert.throws(
    () => netdevGro('ck-no-such-if0'),
    (e: Error & { code?: string }) => e.code === 'ENODEV',
  );
});

test(
  'a headend whose VXLAN interface reads without GRO warns with the fix; with GRO on it does not',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces') },
  async (t) => {
    const scope = netnsScope(t, 'ckg');
    const dc = await scope.ns('dc');
    const hv = await scope.ns('hv');
    const [dh, hd] = [scope.ifname('dh'), scope.ifname('hd')];
    await ipIn(dc, 'link', 'add', dh, 'type', 'veth', 'peer', 'name', hd, 'netns', hv);
    await ipIn(dc, 'addr', 'add', '10.97.0.1/24', 'dev', dh);
    await ipIn(dc, 'link', 'set', dh, 'up');
    await ipIn(hv, 'link', 'set', hd, 'up');
    await ipIn(dc, 'link', 'set', 'lo', 'up');
    const d = tempDir(t, 'ck-gro-', true);
    const pki = await createTestPki(d.dir);
    writeJson(d.path('registry.json'), registryDoc({ acme: { vni: 100, vteps: ['10.97.0.2'] } }, {}));
    writeJson(d.path('headend.json'), headendConfigDoc(d, pki, { vxlanAddress: '10.97.0.1', vxlanPort: 4789 }));
    const warning = (l: Record<string, unknown>): boolean => l['msg'] === 'VXLAN interface without GRO: one read per frame from the fabric';

    // A veth has GRO off by default: the kernel would hand the headend one datagram per read.
    await exec('ip', ['netns', 'exec', dc, 'ethtool', '-K', dh, 'gro', 'off']);
    const first = await spawnHeadend(d.path('headend.json'), dc);
    t.after(() => first.kill());
    const w = await first.waitForLine(warning, 5_000);
    assert.equal(w['level'], 'warn');
    assert.equal(w['interface'], dh);
    assert.equal(w['fix'], `ethtool -K ${dh} gro on`);
    await first.kill();

    await exec('ip', ['netns', 'exec', dc, 'ethtool', '-K', dh, 'gro', 'on']);
    const second = await spawnHeadend(d.path('headend.json'), dc);
    t.after(() => second.kill());
    assert.equal(second.lines.filter(warning).length, 0, 'no warning once GRO is on');
    await second.kill();
    scope.cleanup();
    d.remove();
  },
);
