// SPDX-License-Identifier: UNLICENSED
// Per-test namespace scope: unique prefix, cleanup after the test and on process exit (even on failure).
import type { TestContext } from 'node:test';
import { addNetns, removeNetnsWithPrefix, uniquePrefix } from '../../src/lab/adapters/netns.js';

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
