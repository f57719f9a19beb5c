// SPDX-License-Identifier: UNLICENSED
// The agent's identity: the stored operational certificate when it is valid, otherwise first-boot
// enrollment from the factory block (EST), then renewal at 2/3 of the lifetime. A renewed certificate is
// used from the tunnel's next handshake on; the running session is not dropped.
import type { Logger } from '../../../shared/log.js';
import type { AgentConfig } from '../../core/config.js';
import type { IdentitySource } from '../../core/agent.js';
import {
  ensureIdentity,
  IdentityStatusTracker,
  runRenewal,
  systemClock,
  type Identity,
  type IdentityOptions,
  type WallClock,
} from './index.js';

export function enrollmentIdentitySource(config: AgentConfig, log: Logger, clock: WallClock = systemClock): IdentitySource {
  const status = new IdentityStatusTracker(clock.now);
  const ac = new AbortController();
  let identity: Identity | undefined;
  let stopRenewal: (() => Promise<void>) | undefined;
  const base: Omit<IdentityOptions, 'signal'> = {
    identityDir: config.identityDir,
    factoryBlockPath: config.enroll.factoryBlockPath,
    factoryBlockOffset: config.enroll.factoryBlockOffset,
    ...(config.enroll.url ? { estUrl: config.enroll.url } : {}),
    minTimeS: config.enroll.minTimeS,
    clock,
    log: log.child({ part: 'identity' }),
    status,
  };
  return {
    async ready() {
      const first = await ensureIdentity({ ...base, signal: ac.signal });
      identity = first;
      stopRenewal = runRenewal({
        ...base,
        identity: first,
        onRenewed: (next) => {
          identity = next;
          log.info('operational certificate renewed; used from the next tunnel handshake', {
            fingerprint: next.fingerprint,
            notAfter: next.notAfter.toISOString(),
          });
        },
      });
    },
    async current() {
      if (!identity) throw new TypeError('identity requested before ready() resolved');
      return { key: identity.keyPem, cert: identity.certPem, ca: identity.caPem };
    },
    status: () => ({ ...status.snapshot() }),
    async close() {
      ac.abort();
      await stopRenewal?.();
    },
  };
}
