// SPDX-License-Identifier: UNLICENSED
// The agent's identity as its life cycle sees it: the stored operational certificate when it is valid,
// otherwise first-boot enrollment, then renewal at 2/3 of the lifetime. A renewed certificate is used
// from the tunnel's next handshake on; the running session is not dropped.
import type { Logger } from '../../../shared/log.js';
import type { IdentitySource } from '../ports.js';
import { ensureIdentity, runRenewal, type Identity, type IdentityOptions } from './lifecycle.js';

export function createIdentitySource(base: Omit<IdentityOptions, 'signal'>, log: Logger): IdentitySource {
  const ac = new AbortController();
  let identity: Identity | undefined;
  let stopRenewal: (() => Promise<void>) | undefined;
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
    status: () => ({ ...base.status.snapshot() }),
    async close() {
      ac.abort();
      await stopRenewal?.();
    },
  };
}
