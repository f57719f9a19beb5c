// SPDX-License-Identifier: UNLICENSED
// The device identity on real files: the life cycle of core/identity over the identity_dir store, the
// factory block (eMMC or a file in the lab) and the EST client. What src/agent/main.ts wires in.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../../shared/log.js';
import {
  ensureIdentity as ensureCore,
  runRenewal as runRenewalCore,
  type Identity,
  type IdentityOptions,
  type IdentityPorts,
  type RenewalOptions,
} from '../../core/identity/lifecycle.js';
import type { IdentityClock } from '../../core/identity/policy.js';
import { enrollOnce } from './enroller.js';
import { loadFactorySource } from './factory-source.js';
import { loadIdentity } from './store.js';

export { IdentityStatusTracker, type IdentityState, type IdentityStatus } from '../../core/identity/status.js';
export { checkClock, DEFAULT_MIN_TIME_S, renewAtOf, type IdentityClock } from '../../core/identity/policy.js';
export { loadIdentity, identityPaths } from './store.js';
export type { Identity };

export const systemIdentityClock: IdentityClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
};

export interface IdentityFiles {
  /** UCI agent.identity_dir, e.g. /etc/connector */
  identityDir: string;
  /** UCI enroll.factory_block_path: the eMMC device, or a file in the lab. */
  factoryBlockPath: string;
  /** UCI enroll.factory_block_offset in bytes (FACTORY_BLOCK_OFFSET = 24 MiB). */
  factoryBlockOffset: number;
}

export function fileIdentityPorts(f: IdentityFiles, clock: IdentityClock, log: Logger): IdentityPorts {
  return {
    loadStored: (nowMs) => loadIdentity(f.identityDir, nowMs),
    loadFactory: () => loadFactorySource({ path: f.factoryBlockPath, offset: f.factoryBlockOffset, identityDir: f.identityDir, log }).data,
    enroll: (op, m) => enrollOnce({ identityDir: f.identityDir, clock, log }, op, m),
  };
}

export type FileIdentityOptions = IdentityFiles & Omit<IdentityOptions, 'ports'>;

/** ensureIdentity (core/identity/lifecycle.ts) over the real files. */
export function ensureIdentity(o: FileIdentityOptions): Promise<Identity> {
  return ensureCore({ ...o, ports: fileIdentityPorts(o, o.clock, o.log) });
}

/** runRenewal (core/identity/lifecycle.ts) over the real files. */
export function runRenewal(o: IdentityFiles & Omit<RenewalOptions, 'ports'>): () => Promise<void> {
  return runRenewalCore({ ...o, ports: fileIdentityPorts(o, o.clock, o.log) });
}
