// SPDX-License-Identifier: UNLICENSED
// The tunnel client's option checks and URL helper (./tunnel-client.ts), apart to keep that file readable.
import { checkBackoffOptions } from '../core/backoff.js';
import type { TunnelClientOptions } from './tunnel-client-types.js';

export function validate(o: TunnelClientOptions): void {
  if (o.headends.length === 0) throw new RangeError('createTunnelClient: at least one headend URL is required');
  for (const u of o.headends) {
    if (u.protocol !== 'tls:') throw new RangeError(`headend URL ${u.href} must use tls://host:port`);
  }
  if (!(o.keepaliveMs > 0) || !(o.deadAfterMs > o.keepaliveMs)) {
    throw new RangeError(`need 0 < keepaliveMs < deadAfterMs, got ${o.keepaliveMs} and ${o.deadAfterMs}`);
  }
  checkBackoffOptions(o.backoff);
}

export function hostOf(u: URL): string {
  return u.hostname.replace(/^\[(.*)\]$/, '$1');
}
