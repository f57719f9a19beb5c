// SPDX-License-Identifier: UNLICENSED
// First boot and recovery: make sure the device holds a valid operational identity, enrolling over EST
// with the factory IDevID when it does not. The key is generated here and never leaves the device.
import { X509Certificate } from 'node:crypto';
import { ConnectorError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import { createCsr, exportPrivateKeyPem, generateKeyPair } from '../../../shared/pki/x509.js';
import type { FactoryData } from '../../../shared/factory-block/factory-block.js';
import { checkClock, DEFAULT_MIN_TIME_S, type WallClock } from './clock.js';
import { estCaCerts, estSimpleEnroll, estSimpleReenroll, type EstResult } from './est-client.js';
import { loadFactorySource } from './factory-source.js';
import { IdentityStatusTracker } from '../../core/identity-status.js';
import { loadIdentity, saveIdentity, type Identity } from './store.js';

export interface IdentityOptions {
  /** UCI agent.identity_dir, e.g. /etc/connector */
  identityDir: string;
  /** UCI enroll.factory_block_path: the eMMC device, or a file in the lab. */
  factoryBlockPath: string;
  /** UCI enroll.factory_block_offset in bytes (FACTORY_BLOCK_OFFSET = 24 MiB). */
  factoryBlockOffset: number;
  /** UCI enroll.url; empty or absent means the URL in the factory block. */
  estUrl?: string;
  /** UCI enroll.min_time (epoch seconds, image build time); 0 or absent means DEFAULT_MIN_TIME_S. */
  minTimeS?: number;
  clock: WallClock;
  log: Logger;
  status: IdentityStatusTracker;
  signal?: AbortSignal;
  /** Backoff between failed attempts, seconds: first delay, cap. Default 5, 300. */
  backoffS?: { initial: number; max: number };
  /** Poll interval while the clock is unset, ms. Default 5000. */
  clockPollMs?: number;
  /** In [0,1); default Math.random. Jitter keeps a rebooted fleet from enrolling in lockstep. */
  random?: () => number;
}

export const DEFAULT_BACKOFF_S = { initial: 5, max: 300 } as const;

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

export function backoffDelayMs(o: IdentityOptions, attempt: number, retryAfterS?: number): number {
  if (retryAfterS !== undefined) return Math.min(Math.max(retryAfterS, 1), 3600) * 1000;
  const b = o.backoffS ?? DEFAULT_BACKOFF_S;
  const base = Math.min(b.max, b.initial * 2 ** Math.min(attempt, 20));
  return Math.round(base * 1000 * (0.5 + (o.random ?? Math.random)() / 2));
}

function pem(der: Buffer): string {
  return new X509Certificate(der).toString();
}

export interface EnrollMaterial {
  serial: string;
  estUrl: string;
  anchorPem: string;
  /** Client certificate chain and key for the TLS handshake. */
  authCertPem: string;
  authKeyPem: string;
}

/**
 * One enrollment exchange: fresh P-256 key, CSR with CN = serialNumber = serial, POST, store on success.
 * Returns the stored identity, or the EST result that stopped it.
 */
export async function enrollOnce(
  o: IdentityOptions,
  op: 'simpleenroll' | 'simplereenroll',
  m: EnrollMaterial,
): Promise<{ ok: true; identity: Identity } | { ok: false; result: Exclude<EstResult, { kind: 'issued' }> }> {
  const keys = await generateKeyPair(true);
  const csr = await createCsr({ cn: m.serial, serialNumber: m.serial }, keys);
  const client = { baseUrl: m.estUrl, tls: { ca: m.anchorPem, cert: m.authCertPem, key: m.authKeyPem }, nowMs: o.clock.now() };
  const res = await (op === 'simpleenroll' ? estSimpleEnroll : estSimpleReenroll)(client, new Uint8Array(csr.rawData));
  if (res.kind !== 'issued') return { ok: false, result: res };
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const spki = Buffer.from(await globalThis.crypto.subtle.exportKey('spki', keys.publicKey));
  const leafDer = res.certsDer.find((d) => new X509Certificate(d).publicKey.export({ type: 'spki', format: 'der' }).equals(spki));
  if (!leafDer) return { ok: false, result: { kind: 'error', message: `EST ${op}: the response holds no certificate for our key` } };
  const cas = await estCaCerts({ baseUrl: m.estUrl, tls: { ca: m.anchorPem }, nowMs: o.clock.now() });
  const chain = cas.kind === 'issued' ? cas.certsDer.map(pem) : [];
  if (cas.kind !== 'issued') o.log.warn('EST cacerts failed; storing the certificate without its chain', { detail: cas.message });
  saveIdentity(o.identityDir, keyPem, [pem(leafDer), ...chain].join(''), m.anchorPem);
  const loaded = loadIdentity(o.identityDir, o.clock.now());
  if (!loaded.ok) return { ok: false, result: { kind: 'error', message: `stored identity does not load back: ${loaded.reason}` } };
  return { ok: true, identity: loaded.identity };
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

/** RFC-free policy (step-ca's default): renew once two thirds of the lifetime have passed. */
export function renewAtOf(id: Pick<Identity, 'notBefore' | 'notAfter'>): Date {
  const nb = id.notBefore.getTime();
  return new Date(nb + Math.floor(((id.notAfter.getTime() - nb) * 2) / 3));
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
  const floorS = Math.max(o.minTimeS || DEFAULT_MIN_TIME_S, Math.floor(Date.parse(factory.createdAt) / 1000) || 0);
  for (let attempt = 0; ; attempt++) {
    await waitForClock(o, floorS);
    aborted(o.signal);
    o.status.update({ state: 'enrolling', serial: m.serial, attempts: attempt + 1, reason: `simpleenroll to ${m.estUrl}` });
    o.log.info('enrolling', { serial: m.serial, url: m.estUrl, attempt: attempt + 1 });
    const r = await enrollOnce(o, 'simpleenroll', m);
    if (r.ok) {
      o.log.info('enrolled', { serial: r.identity.serial, fingerprint: r.identity.fingerprint, notAfter: r.identity.notAfter.toISOString() });
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
 * enrolled with the factory IDevID. Waits (with a status reason) while the clock is unset, the unit is
 * unclaimed, or the server is unreachable; rejects only when the factory block is unusable or on abort.
 */
export async function ensureIdentity(o: IdentityOptions): Promise<Identity> {
  await waitForClock(o, o.minTimeS || DEFAULT_MIN_TIME_S);
  const stored = loadIdentity(o.identityDir, o.clock.now());
  // Read (and if needed repair) the factory block even when the identity is valid, so a wiped block is
  // restored while the copy is still at hand.
  let factory: FactoryData;
  try {
    factory = loadFactorySource({ path: o.factoryBlockPath, offset: o.factoryBlockOffset, identityDir: o.identityDir, log: o.log }).data;
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
