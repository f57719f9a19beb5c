// SPDX-License-Identifier: UNLICENSED
// The agent's end of the OTA channel: once the identity is there, build the updater, let it finish what
// a previous run left (health-check a freshly switched version, or roll it back) while the broker
// connection comes up, report that outcome, then take jobs. Anything failing is retried every 30 s. The
// two things only the agent knows come in as functions: whether the tunnel is up (the health check of
// a new version) and how to make a new version run (exit; procd starts `current` again).
import { X509Certificate } from 'node:crypto';
import { errorMessage } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import type { JobStateReport } from '../../../shared/ota/protocol.js';
import { subjectSerial } from '../../../shared/pki/x509.js';
import type { Scheduler } from '../../../shared/ports.js';
import type { OtaChannel, TunnelIdentity } from '../ports.js';
import type { Updater } from './updater.js';

/** The broker connection as the channel uses it. */
export interface OtaBroker {
  /** The updater's `report` port. */
  report(r: JobStateReport): Promise<void>;
  /** Starts taking jobs; resolves once subscribed. */
  attach(updater: Updater): Promise<void>;
  /** The unit's health, retained for the console; fire and forget (a broker refusing it costs nothing else). */
  publishHealth(doc: unknown): void;
  readonly drops: Record<string, number>;
  close(): Promise<void>;
}

export interface OtaChannelPorts {
  broker: string;
  log: Logger;
  scheduler: Scheduler;
  identity(): Promise<TunnelIdentity>;
  /** The CA for the broker and the artifact server, given the identity's DC anchor. */
  caFor(identityCa: string): string;
  createUpdater(serial: string, ca: string, report: (r: JobStateReport) => void | Promise<void>): Updater;
  connect(o: { serial: string; ca: string; cert: string; key: string }): Promise<OtaBroker>;
  /** The unit's health document, published when the channel is ready and every `healthEveryMs`. */
  health?: () => unknown;
  healthEveryMs?: number;
}

export const HEALTH_EVERY_MS = 10_000;

const RETRY_MS = 30_000;

export function startOtaChannel(d: OtaChannelPorts): OtaChannel {
  const log = d.log.child({ part: 'ota' });
  let state = 'starting';
  let lastError: string | undefined;
  let broker: OtaBroker | undefined;
  let updater: Updater | undefined;
  let closed = false;
  let version: string | undefined;
  // Reports made before the broker connection exists (the outcome of resume() after a restart).
  const pending: JobStateReport[] = [];
  let wake: (() => void) | undefined;
  let stopHealth: (() => void) | undefined;

  const run = async (): Promise<void> => {
    const id = await d.identity();
    const serial = subjectSerial(new X509Certificate(id.cert).subject) ?? '';
    const ca = d.caFor(id.ca);
    updater ??= d.createUpdater(serial, ca, (r) => (broker ? broker.report(r) : void pending.push(r)));
    state = 'resuming';
    // Connect while resume() finishes what a previous run left, so its outcome reaches the controller.
    const connecting = d.connect({ serial, ca, cert: id.cert, key: id.key }).then(async (b) => {
      broker = b;
      for (const r of pending.splice(0)) await b.report(r);
      return b;
    });
    connecting.catch(() => undefined); // observed below
    await updater.resume();
    version = await updater.runningVersion();
    state = 'connecting';
    await (await connecting).attach(updater);
    state = 'ready';
    lastError = undefined;
    if (d.health) {
      const health = d.health;
      const publish = (): void => {
        try {
          broker?.publishHealth(health());
        } catch (e) {
          log.warn('health not published', { error: errorMessage(e) });
        }
      };
      publish();
      stopHealth = d.scheduler.setInterval(publish, d.healthEveryMs ?? HEALTH_EVERY_MS);
    }
  };

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const cancel = d.scheduler.setTimeout(() => resolve(), ms);
      wake = () => {
        cancel();
        resolve();
      };
    });

  void (async () => {
    while (!closed) {
      try {
        await run();
        return;
      } catch (e) {
        lastError = errorMessage(e);
        state = 'retrying';
        log.warn('ota channel not ready; retrying', { error: lastError, retryS: RETRY_MS / 1000 });
        await broker?.close().catch(() => {});
        broker = undefined;
        if (!closed) await pause(RETRY_MS);
      }
    }
  })();

  return {
    status: () => ({
      state,
      broker: d.broker,
      ...(version ? { version } : {}),
      ...(lastError ? { lastError } : {}),
      drops: broker?.drops ?? {},
    }),
    async close() {
      // Not awaiting the loop: close() is also reached from inside it (a restart during resume()).
      closed = true;
      wake?.();
      stopHealth?.();
      await broker?.close().catch(() => {});
    },
  };
}
