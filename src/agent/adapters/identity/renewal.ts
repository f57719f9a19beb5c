// SPDX-License-Identifier: UNLICENSED
// Keeps the operational certificate fresh: simplereenroll at 2/3 of its lifetime, authenticated by the
// current certificate, with a new key. Falls back to the IDevID when the identity is lost or expired.
// The loop only ends when stopped: every failure becomes a status reason and a retry.
import { DEFAULT_MIN_TIME_S } from './clock.js';
import { backoffDelayMs, enrollOnce, enrollWithIdevid, renewAtOf, waitForClock, type IdentityOptions } from './enroll.js';
import { loadFactorySource } from './factory-source.js';
import { loadIdentity, type Identity } from './store.js';

export interface RenewalOptions extends Omit<IdentityOptions, 'signal'> {
  /** The identity ensureIdentity returned. */
  identity: Identity;
  /** Called after new files are in place; the tunnel uses them for its next handshake. */
  onRenewed(identity: Identity): void;
  /** Longest single sleep, ms, so a clock step (NTP sync) is noticed. Default 10 min. */
  maxSleepMs?: number;
}

type Step = { ok: true; identity: Identity } | { ok: false; waitMs: number };

async function renewOnce(o: RenewalOptions, opts: IdentityOptions, attempt: number): Promise<Step> {
  const stored = loadIdentity(o.identityDir, o.clock.now());
  const factory = () => loadFactorySource({ path: o.factoryBlockPath, offset: o.factoryBlockOffset, identityDir: o.identityDir, log: o.log }).data;
  if (!stored.ok) {
    // Lost (factory reset) or expired: only the IDevID can get us back.
    o.log.warn('operational identity unusable; re-enrolling with the IDevID', { reason: stored.reason });
    return { ok: true, identity: await enrollWithIdevid(opts, factory()) };
  }
  o.status.update({ state: 'renewing', attempts: attempt + 1, reason: 'simplereenroll at 2/3 of the certificate lifetime' });
  // The stored anchor and a configured URL suffice; the factory block is only needed for its URL.
  const estUrl = o.estUrl || factory().estUrl;
  const r = await enrollOnce(opts, 'simplereenroll', {
    serial: stored.identity.serial,
    estUrl,
    anchorPem: stored.identity.caPem || factory().dcAnchorPem,
    authCertPem: stored.identity.certPem,
    authKeyPem: stored.identity.keyPem,
  });
  if (r.ok) return r;
  const res = r.result;
  const waitMs = backoffDelayMs(opts, attempt, res.kind === 'retry' ? res.afterS : undefined);
  const nextAttemptAt = new Date(o.clock.now() + waitMs).toISOString();
  if (res.kind === 'refused') {
    o.status.update({ state: 'refused', reason: `EST server refused renewal: ${res.message}`, nextAttemptAt });
    o.log.error('renewal refused', { serial: stored.identity.serial, status: res.status, detail: res.message });
  } else {
    o.status.update({ state: res.kind === 'retry' ? 'waiting-for-claim' : 'error', reason: res.message, nextAttemptAt });
    o.log.warn('renewal failed; will retry', { serial: stored.identity.serial, error: res.message });
  }
  return { ok: false, waitMs };
}

/** Starts the renewal loop; returns a stop function that resolves when the loop has ended. */
export function runRenewal(o: RenewalOptions): () => Promise<void> {
  const ac = new AbortController();
  const opts: IdentityOptions = { ...o, signal: ac.signal };
  let current = o.identity;
  // When the current certificate arrived (unknown for one found on disk). A CA that backdates notBefore
  // by more than a short lifetime's third would otherwise put the renewal time in the past on arrival
  // and renew in a tight loop: count two thirds of what is left from arrival instead.
  let receivedMs: number | undefined;
  const dueOf = (id: typeof current): number => {
    const byCert = renewAtOf(id).getTime();
    if (receivedMs === undefined) return byCert;
    return Math.max(byCert, receivedMs + Math.floor(((id.notAfter.getTime() - receivedMs) * 2) / 3));
  };
  const loop = async (): Promise<void> => {
    for (let attempt = 0; !ac.signal.aborted; ) {
      const renewAt = dueOf(current);
      const now = o.clock.now();
      if (now < renewAt) {
        o.status.update({ renewAt: new Date(renewAt).toISOString() });
        await o.clock.sleep(Math.min(renewAt - now, o.maxSleepMs ?? 600_000), ac.signal);
        continue;
      }
      await waitForClock(opts, o.minTimeS || DEFAULT_MIN_TIME_S);
      let step: Step;
      try {
        step = await renewOnce(o, opts, attempt);
      } catch (e) {
        if (ac.signal.aborted) return;
        const waitMs = backoffDelayMs(opts, attempt);
        o.status.update({ state: 'error', reason: `renewal: ${(e as Error).message}`, nextAttemptAt: new Date(o.clock.now() + waitMs).toISOString() });
        o.log.error('renewal failed', { error: (e as Error).message });
        step = { ok: false, waitMs };
      }
      if (!step.ok) {
        attempt++;
        await o.clock.sleep(step.waitMs, ac.signal);
        continue;
      }
      const next = step.identity;
      attempt = 0;
      current = next;
      receivedMs = o.clock.now();
      o.log.info('operational certificate renewed', { serial: next.serial, fingerprint: next.fingerprint, notAfter: next.notAfter.toISOString() });
      o.status.update({
        state: 'ready',
        reason: undefined,
        fingerprint: next.fingerprint,
        notAfter: next.notAfter.toISOString(),
        renewAt: new Date(dueOf(next)).toISOString(),
        nextAttemptAt: undefined,
        attempts: 0,
      });
      try {
        o.onRenewed(next);
      } catch (e) {
        o.log.error('onRenewed handler failed', { error: (e as Error).message });
      }
    }
  };
  const done = loop().catch((e: unknown) => {
    if (ac.signal.aborted) return;
    o.status.update({ state: 'error', reason: `renewal stopped: ${(e as Error).message}` });
    o.log.error('renewal loop stopped', { error: (e as Error).message });
  });
  return async () => {
    ac.abort();
    await done;
  };
}
