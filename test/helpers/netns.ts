// SPDX-License-Identifier: UNLICENSED
// Per-test namespace scope: unique prefix, cleanup after the test and on process exit (even on failure).
import type { TestContext } from 'node:test';
import { addNetns, ipIn, nsExec, removeNetnsWithPrefix, uniquePrefix } from '../../src/lab/adapters/netns.js';

export interface NetnsScope {
  prefix: string;
  /** Full namespace name for a short role name, created on first call. */
  ns(role: string): Promise<string>;
  /** A unique interface name (<= 15 bytes) for a short role name. */
  ifname(role: string): string;
  cleanup(): void;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function netnsScope(t: TestContext | { after(fn: () => void): void }, stem = 'ckt'): NetnsScope {
  const prefix = uniquePrefix(stem);
  const created = new Map<string, string>();
  const cleanup = (): void => {
    removeNetnsWithPrefix(prefix);
  };
  process.once('exit', cleanup);
  t.after(() => {
    cleanup();
    process.removeListener('exit', cleanup);
  });
  return {
    prefix,
    async ns(role) {
      const have = created.get(role);
      if (have) return have;
      const name = `${prefix}-${role}`;
      await addNetns(name);
      created.set(role, name);
      return name;
    },
    ifname(role) {
      return `${prefix}${role}`.slice(0, 15);
    },
    cleanup,
  };
}

/**
 * A hypervisor's kernel VTEP in `ns`: vxlan device `vx<vni>` (UDP 4789, unicast to `remote`) enslaved to a
 * bridge, both up; `ports` join the bridge too. Returns the bridge's name.
 */
export async function kernelVtep(
  ns: string,
  o: { vni: number; local: string; remote: string; dev: string; bridge?: string; ports?: readonly string[] },
): Promise<string> {
  const vx = `vx${o.vni}`;
  const br = o.bridge ?? `br${o.vni}`;
  await ipIn(
    ns,
    'link',
    'add',
    vx,
    'type',
    'vxlan',
    'id',
    String(o.vni),
    'dstport',
    '4789',
    'remote',
    o.remote,
    'local',
    o.local,
    'dev',
    o.dev,
  );
  await ipIn(ns, 'link', 'add', br, 'type', 'bridge');
  for (const port of [vx, ...(o.ports ?? [])]) await ipIn(ns, 'link', 'set', port, 'master', br);
  for (const dev of [vx, br]) await ipIn(ns, 'link', 'set', dev, 'up');
  return br;
}

/**
 * A hypervisor's flood-and-learn VTEP with several remotes (the headends of an HA pair): vxlan `vx<vni>`
 * without a fixed remote, one all-zeros FDB entry per remote (BUM traffic is copied to each), MAC
 * learning on, on bridge `br<vni>`. Returns the bridge's name.
 */
export async function kernelVtepFlood(
  ns: string,
  o: { vni: number; local: string; remotes: readonly string[]; dev: string; bridge?: string },
): Promise<string> {
  const vx = `vx${o.vni}`;
  const br = o.bridge ?? `br${o.vni}`;
  await ipIn(ns, 'link', 'add', vx, 'type', 'vxlan', 'id', String(o.vni), 'dstport', '4789', 'local', o.local, 'dev', o.dev);
  for (const dst of o.remotes) await nsExec(ns, 'bridge', ['fdb', 'append', '00:00:00:00:00:00', 'dev', vx, 'dst', dst]);
  await ipIn(ns, 'link', 'add', br, 'type', 'bridge');
  await ipIn(ns, 'link', 'set', vx, 'master', br);
  for (const dev of [vx, br]) await ipIn(ns, 'link', 'set', dev, 'up');
  return br;
}
