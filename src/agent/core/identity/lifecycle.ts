// SPDX-License-Identifier: UNLICENSED
// The device identity's life cycle: make sure a valid operational certificate exists (enrolling over EST
// with the factory IDevID when it does not: first boot, factory reset, expiry), then keep it fresh
// (simplereenroll at 2/3 of its lifetime). Waits, with a status reason an installer can act on, while
// the clock is unset, the unit is unclaimed or the server is unreachable. The store, the factory block
// and the EST exchange are ports (adapters/identity/); time comes from the injected clock.
import { ConnectorError } from '../../../shared/errors.js';
import type { FactoryData } from '../../../shared/factory-block/factory-block.js';
import type { Logger } from '../../../shared/log.js';
import {
  backoffDelayMs,
  checkClock,
  DEFAULT_MIN_TIME_S,
  enrollmentFloorS,
  renewAtOf,
  renewalDueMs,
  type BackoffSettings,
  type IdentityClock,
} from './policy.js';
import type { IdentityStatusTracker } from './status.js';

/** The operational identity: file paths plus the same material in memory. */
export interface Identity {
  serial: string;
  keyFile: string;
  certFile: string;
  caFile: string;
  keyPem: string;
  /** Leaf first, then the device CA chain. */
  certPem: string;
  caPem: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

export type LoadResult = { ok: true; identity: Identity } | { ok: false; reason: string };

/** How an EST exchange that issued nothing ended. */
export type EstRefusal =
  | { kind: 'retry'; afterS: number | undefined; message: string }
  | { kind: 'refused'; status: number; message: string }
  | { kind: 'error'; message: string };

export interface EnrollMaterial {
  serial: string;
  estUrl: string;
  anchorPem: string;
  /** Client certificate chain and key for the TLS handshake. */
  authCertPem: string;
  authKeyPem: string;
}

export type EnrollOutcome = { ok: true; identity: Identity } | { ok: false; result: EstRefusal };

/** What the life cycle needs from the outside: the stored identity, the factory block, EST. */
export interface IdentityPorts {
  /** The stored identity, checked for validity at `nowMs`. */
  loadStored(nowMs: number): LoadResult;
  /** The factory data (raw block or its copy); throws when neither is usable. */
  loadFactory(): FactoryData;
  /** One exchange: fresh key, CSR, EST, and on success the identity stored and loaded back. */
  enroll(op: 'simpleenroll' | 'simplereenroll', m: EnrollMaterial): Promise<EnrollOutcome>;
}

export interface IdentityOptions extends BackoffSettings {
  /** UCI enroll.url; empty or absent means the URL in the factory block. */
  estUrl?: string;
  /** UCI enroll.min_time (epoch seconds, image build time); 0 or absent means DEFAULT_MIN_TIME_S. */
  minTimeS?: number;
  clock: IdentityClock;
  log: Logger;
  status: IdentityStatusTracker;
  signal?: AbortSignal;
  /** Poll interval while the clock is unset, ms. Default 5000. */
  clockPollMs?: number;
  ports: IdentityPorts;
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new ConnectorError('CK_ERR_EST', 'identity: aborted');
}

/** Blocks while the wall clock is earlier than `floorS`, with the reason in status and log. */
export async function waitForClock(o: IdentityOptions, floorS: number): Promise<void> {
  let logged = false;
  for (;;) {
    aborted(o.signal);
    const c = checkClock(o.clock.now(), floorS);
    if (c.ok) {
      if (logged) o.log.info('clock set; continuing', { now: new Date(o.clock.now()).toISOString() });
      return;
    }
    if (!logged) o.log.warn('waiting for time sync', { reason: c.reason });
    logged = true;
    o.status.update({ state: 'waiting-for-time', reason: c.reason });
    await o.clock.sleep(o.clockPollMs ?? 5000, o.signal);
  }
}

function readyStatus(o: IdentityOptions, id: Identity): void {
  o.status.update({
    state: 'ready',
    reason: undefined,
    serial: id.serial,
    fingerprint: id.fingerprint,
    notAfter: id.notAfter.toISOString(),
    renewAt: renewAtOf(id).toISOString(),
    nextAttemptAt: undefined,
    attempts: 0,
  });
}

/** Enrolls with the IDevID until it succeeds (or the signal aborts), honouring Retry-After. */
export async function enrollWithIdevid(o: IdentityOptions, factory: FactoryData): Promise<Identity> {
  const m: EnrollMaterial = {
    serial: factory.serial,
    estUrl: o.estUrl || factory.estUrl,
    anchorPem: factory.dcAnchorPem,
    authCertPem: factory.idevidChainPem,
    authKeyPem: factory.idevidKeyPem,
  };
  const floorS = enrollmentFloorS(o.minTimeS, factory.createdAt);
  for (let attempt = 0; ; attempt++) {
    await waitForClock(o, floorS);
    aborted(o.signal);
    o.status.update({ state: 'enrolling', serial: m.serial, attempts: attempt + 1, reason: `simpleenroll to ${m.estUrl}` });
    o.log.info('enrolling', { serial: m.serial, url: m.estUrl, attempt: attempt + 1 });
    const r = await o.ports.enroll('simpleenroll', m);
    if (r.ok) {
      o.log.info('enrolled', {
        serial: r.identity.serial,
        fingerprint: r.identity.fingerprint,
        notAfter: r.identity.notAfter.toISOString(),
      });
      readyStatus(o, r.identity);
      return r.identity;
    }
    const res = r.result;
    const wait = backoffDelayMs(o, attempt, res.kind === 'retry' ? res.afterS : undefined);
    const next = new Date(o.clock.now() + wait).toISOString();
    if (res.kind === 'retry') {
      o.status.update({ state: 'waiting-for-claim', reason: `EST server: ${res.message || 'pending'}`, nextAttemptAt: next });
      o.log.info('enrollment pending: waiting for the unit to be claimed', { serial: m.serial, retryAfterS: wait / 1000 });
    } else if (res.kind === 'refused') {
      o.status.update({ state: 'refused', reason: `EST server refused enrollment: ${res.message}`, nextAttemptAt: next });
      o.log.error('enrollment refused', { serial: m.serial, status: res.status, detail: res.message });
    } else {
      o.status.update({ state: 'error', reason: res.message, nextAttemptAt: next });
      o.log.warn('enrollment failed; will retry', { serial: m.serial, error: res.message });
    }
    await o.clock.sleep(wait, o.signal);
  }
}

/**
 * Resolves with a valid operational identity: the stored one when it is still valid, else a new one
 * enrolled with the factory IDevID. Rejects only when the factory block is unusable or on abort.
 */
export async function ensureIdentity(o: IdentityOptions): Promise<Identity> {
  await waitForClock(o, o.minTimeS || DEFAULT_MIN_TIME_S);
  const stored = o.ports.loadStored(o.clock.now());
  // Read (and if needed repair) the factory block even when the identity is valid, so a wiped block is
  // restored while the copy is still at hand.
  let factory: FactoryData;
  try {
    factory = o.ports.loadFactory();
  } catch (e) {
    if (stored.ok) {
      o.log.warn('factory block unusable; continuing with the stored operational identity', { error: (e as Error).message });
      readyStatus(o, stored.identity);
      return stored.identity;
    }
    o.status.update({ state: 'error', reason: (e as Error).message });
    throw e;
  }
  if (stored.ok) {
    readyStatus(o, stored.identity);
    return stored.identity;
  }
  o.log.info('no valid operational identity; enrolling with the factory IDevID', { reason: stored.reason, serial: factory.serial });
  return enrollWithIdevid(o, factory);
}

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
  const stored = o.ports.loadStored(o.clock.now());
  if (!stored.ok) {
    // Lost (factory reset) or expired: only the IDevID can get us back.
    o.log.warn('operational identity unusable; re-enrolling with the IDevID', { reason: stored.reason });
    return { ok: true, identity: await enrollWithIdevid(opts, o.ports.loadFactory()) };
  }
  o.status.update({ state: 'renewing', attempts: attempt + 1, reason: 'simplereenroll at 2/3 of the certificate lifetime' });
  // The stored anchor and a configured URL suffice; the factory block is only needed for its URL.
  const r = await o.ports.enroll('simplereenroll', {
    serial: stored.identity.serial,
    estUrl: o.estUrl || o.ports.loadFactory().estUrl,
    anchorPem: stored.identity.caPem || o.ports.loadFactory().dcAnchorPem,
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

/**
 * Keeps the certificate fresh, falling back to the IDevID when the identity is lost or expired. The loop
 * only ends when stopped: every failure becomes a status reason and a retry. Returns a stop function
 * that resolves when the loop has ended.
 */
export function runRenewal(o: RenewalOptions): () => Promise<void> {
  const ac = new AbortController();
  const opts: IdentityOptions = { ...o, signal: ac.signal };
  let current = o.identity;
  let receivedMs: number | undefined;
  const loop = async (): Promise<void> => {
    for (let attempt = 0; !ac.signal.aborted;) {
      const renewAt = renewalDueMs(current, receivedMs);
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
        o.status.update({
          state: 'error',
          reason: `renewal: ${(e as Error).message}`,
          nextAttemptAt: new Date(o.clock.now() + waitMs).toISOString(),
        });
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
      o.log.info('operational certificate renewed', {
        serial: next.serial,
        fingerprint: next.fingerprint,
        notAfter: next.notAfter.toISOString(),
      });
      o.status.update({
        state: 'ready',
        reason: undefined,
        fingerprint: next.fingerprint,
        notAfter: next.notAfter.toISOString(),
        renewAt: new Date(renewalDueMs(next, receivedMs)).toISOString(),
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
