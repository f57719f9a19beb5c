// SPDX-License-Identifier: UNLICENSED
// FRR (Debian's `frr`: zebra + bgpd) inside a test's namespaces, each instance in its own pathspace
// (-N, runtime files under /var/run/frr/<pathspace>/, `vtysh -N <pathspace>`): iBGP AS 65000 full mesh,
// address-family l2vpn evpn with advertise-all-vni (research/kernel-l2/NOTES.md section 8). Daemons are
// stopped by the pids they wrote, in t.after, even when the test fails.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { nsExec } from '../../../src/lab/adapters/netns.js';
import { waitFor } from '../../helpers/wait.js';

const FRR = '/usr/lib/frr';

export function frrMissing(): string | undefined {
  for (const bin of [join(FRR, 'zebra'), join(FRR, 'bgpd'), '/usr/bin/vtysh']) {
    if (!existsSync(bin)) return `${bin} not found (apt-get install frr)`;
  }
  return undefined;
}

export interface FrrNode {
  pathspace: string;
  vtysh(command: string): Promise<string>;
}

/** Starts zebra and bgpd for `ns` (router id and VTEP address `ip`) peering with `peers`. */
export async function startFrr(t: Pick<TestContext, 'after'>, o: { ns: string; ip: string; peers: readonly string[] }): Promise<FrrNode> {
  const ps = o.ns;
  const run = `/var/run/frr/${ps}`;
  mkdirSync(run, { recursive: true });
  await nsExec(o.ns, 'chown', ['frr:frr', run]);
  // In the runtime dir, which the daemons (user frr) can read, unlike a test's private temp dir.
  const zebraConf = join(run, 'zebra.conf');
  const bgpdConf = join(run, 'bgpd.conf');
  writeFileSync(zebraConf, '', { mode: 0o644 });
  writeFileSync(
    bgpdConf,
    [
      'frr defaults datacenter',
      `hostname ${ps}`,
      'router bgp 65000',
      ` bgp router-id ${o.ip}`,
      ' no bgp default ipv4-unicast',
      ' neighbor fabric peer-group',
      ' neighbor fabric remote-as 65000',
      ' neighbor fabric timers 3 9',
      ...o.peers.map((p) => ` neighbor ${p} peer-group fabric`),
      ' address-family l2vpn evpn',
      '  neighbor fabric activate',
      '  advertise-all-vni',
      ' exit-address-family',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  t.after(() => {
    for (const d of ['bgpd', 'zebra']) {
      const pidFile = join(run, `${d}.pid`);
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(run, { recursive: true, force: true });
  });
  await nsExec(o.ns, join(FRR, 'zebra'), ['-d', '-N', ps, '-f', zebraConf, '-i', join(run, 'zebra.pid'), '--log', `file:${run}/zebra.log`]);
  await waitFor('zebra to listen', 10_000, () => existsSync(join(run, 'zserv.api')));
  await nsExec(o.ns, join(FRR, 'bgpd'), ['-d', '-N', ps, '-f', bgpdConf, '-i', join(run, 'bgpd.pid'), '--log', `file:${run}/bgpd.log`]);
  return {
    pathspace: ps,
    vtysh: (command) =>
      new Promise((resolve) =>
        execFile('vtysh', ['-N', ps, '-c', command], { timeout: 10_000 }, (_e, out, err) => resolve(`${out}${err}`)),
      ),
  };
}
