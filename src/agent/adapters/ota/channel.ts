// SPDX-License-Identifier: UNLICENSED
// The agent's end of the OTA channel: MQTT 5 over TLS with the operational certificate, the A/B updater
// (src/ota/device), and the two things only the agent knows: whether the tunnel is up (the health check
// of a new version) and how to make a new version run (exit, and procd starts `current` again).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import { subjectSerial } from '../../../shared/pki/x509.js';
import { parseUsignPublicKey } from '../../../shared/usign/index.js';
import { connectDeviceMqtt, type DeviceMqtt } from './mqtt-client.js';
import { openSlotStore } from './slots.js';
import { sysupgradeRunner } from './sysupgrade.js';
import { createUpdater, type Updater } from './updater.js';
import type { JobStateReport } from '../../../shared/ota/protocol.js';
import type { Identity } from '../../core/agent.js';
import type { AgentConfig } from '../../core/config.js';

export interface OtaDeps {
  config: AgentConfig;
  log: Logger;
  identity: () => Promise<Identity>;
  tunnelUp: () => boolean;
  /** Stops the agent and exits so the supervisor starts the version `current` now points to. */
  restart: (reason: string) => Promise<void>;
}

export interface OtaChannel {
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

const RETRY_MS = 30_000;

export function startOta(d: OtaDeps): OtaChannel {
  const o = d.config.ota;
  const log = d.log.child({ part: 'ota' });
  let state = 'starting';
  let lastError: string | undefined;
  let mqtt: DeviceMqtt | undefined;
  let updater: Updater | undefined;
  let closed = false;
  let version: string | undefined;
  // Reports made before the broker connection exists (the outcome of resume() after a restart).
  const pending: JobStateReport[] = [];
  const abort = new AbortController();
  const keys = o.pubkeySlots.map((f) => parseUsignPublicKey(readFileSync(f, 'utf8')));

  const run = async (): Promise<void> => {
    const id = await d.identity();
    const serial = subjectSerial(new X509Certificate(id.cert).subject) ?? '';
    const ca = o.caFile ? readFileSync(o.caFile, 'utf8') : id.ca;
    updater ??= createUpdater({
      serial,
      board: o.board,
      trustedKeys: keys,
      slots: openSlotStore(o.slotsDir),
      stateDir: o.stateDir,
      report: (r) => (mqtt ? mqtt.report(r) : void pending.push(r)),
      healthy: async () => d.tunnelUp(),
      healthDeadlineMs: o.healthDeadlineMs,
      restart: (reason) => d.restart(`ota ${reason}`),
      sysupgrade: sysupgradeRunner(o.sysupgradeCommand, log),
      downloadCa: ca,
      log,
    });
    state = 'resuming';
    // Connect while resume() finishes what a previous run left (health-check a freshly switched version,
    // or roll it back), so its outcome reaches the controller.
    const connecting = connectDeviceMqtt({ url: o.broker ?? '', serial, ca, cert: id.cert, key: id.key, board: o.board, log }).then(
      async (m) => {
        mqtt = m;
        for (const r of pending.splice(0)) await m.report(r);
        return m;
      },
    );
    connecting.catch(() => undefined); // observed below
    await updater.resume();
    version = await updater.runningVersion();
    state = 'connecting';
    await (await connecting).attach(updater);
    state = 'ready';
    lastError = undefined;
  };

  void (async () => {
    while (!closed) {
      try {
        await run();
        return;
      } catch (e) {
        lastError = errorMessage(e);
        state = 'retrying';
        log.warn('ota channel not ready; retrying', { error: lastError, retryS: RETRY_MS / 1000 });
        await mqtt?.close().catch(() => {});
        mqtt = undefined;
        await sleep(RETRY_MS, undefined, { signal: abort.signal }).catch(() => {});
      }
    }
  })();

  return {
    status: () => ({ state, broker: o.broker, ...(version ? { version } : {}), ...(lastError ? { lastError } : {}), drops: mqtt?.drops ?? {} }),
    async close() {
      // Not awaiting the loop: close() is also reached from inside it (a restart during resume()).
      closed = true;
      abort.abort();
      await mqtt?.close().catch(() => {});
    },
  };
}
