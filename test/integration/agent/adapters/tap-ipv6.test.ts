// SPDX-License-Identifier: UNLICENSED
// The agent's TAP has no IPv6 of its own (no link-local address, so no DAD, MLD or router solicitation
// of the Connector's leaves into the tunnel), on a kernel with IPv6 on, as on every OpenWrt. A second
// TAP without the agent's setting is the control: IPv6 stays on for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { exec } from '../../../../src/shared/exec.js';
import { skipUnlessCi } from '../../../helpers/skip.js';

const HOST_NET = fileURLToPath(new URL('../../../../src/agent/adapters/host-net.ts', import.meta.url));
const root = typeof process.getuid === 'function' && process.getuid() === 0;

test(
  'the agent TAP has IPv6 off and no IPv6 address; a TAP without the setting keeps IPv6',
  { skip: skipUnlessCi(root ? false : 'needs root (network namespaces)') },
  async (t) => {
    const ns = `ck6-${randomBytes(3).toString('hex')}`;
    await exec('ip', ['netns', 'add', ns]);
    t.after(() => exec('ip', ['netns', 'del', ns]).catch(() => undefined));
    const inNs = (cmd: string, args: string[]) => exec('ip', ['netns', 'exec', ns, cmd, ...args]);
    await inNs('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=0']);
    await inNs('sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=0']);
    for (const tap of ['tap-dr', 'tap-ctl']) await inNs('ip', ['tuntap', 'add', 'mode', 'tap', 'name', tap]);
    await inNs(process.execPath, [
      '--import',
      'tsx',
      '-e',
      `import(${JSON.stringify(HOST_NET)}).then((m) => m.disableTapIpv6('tap-dr', console))`,
    ]);
    for (const tap of ['tap-dr', 'tap-ctl']) await inNs('ip', ['link', 'set', 'dev', tap, 'up']);
    await new Promise((r) => setTimeout(r, 300));
    const v6 = async (tap: string): Promise<string> => (await inNs('ip', ['-6', 'addr', 'show', 'dev', tap])).stdout;
    assert.equal((await inNs('sysctl', ['-n', 'net.ipv6.conf.tap-dr.disable_ipv6'])).stdout.trim(), '1');
    assert.equal((await inNs('sysctl', ['-n', 'net.ipv6.conf.tap-ctl.disable_ipv6'])).stdout.trim(), '0', 'the control keeps IPv6');
    assert.doesNotMatch(await v6('tap-dr'), /inet6/);
  },
);
