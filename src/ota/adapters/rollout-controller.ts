// SPDX-License-Identifier: UNLICENSED
// The rollout controller: one MQTT 5 client with the controller certificate. It publishes retained QoS 1
// job documents to the devices the pure state says are due, folds their job-state reports into the
// state, and writes the state file (atomically) after every change so a restart picks up where it was.
import mqtt, { type MqttClient } from 'mqtt';
import { readFile } from 'node:fs/promises';
import { errorMessage, isErrno } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { ALL_JOB_STATES_FILTER, jobTopic, parseJobStateReport, parseJobTopic, type JobDocument } from '../../shared/ota/protocol.js';
import { applyReport, evaluate, jobsToSend, markSent, parseRolloutState, type RolloutState } from '../core/rollout-state.js';

export interface ControllerMqttOptions {
  readonly url: string;
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export async function connectController(o: ControllerMqttOptions, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(o.url, {
    protocolVersion: 5,
    clientId,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    clean: true,
    reconnectPeriod: 1000,
  });
}

export async function loadRolloutState(file: string): Promise<RolloutState | undefined> {
  try {
    return parseRolloutState(await readFile(file, 'utf8'), file);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export interface RunRolloutOptions {
  readonly client: MqttClient;
  readonly stateFile: string;
  readonly initial: RolloutState;
  /** Signed manifest bytes and signature text, sent verbatim in every job. */
  readonly manifest: Buffer;
  readonly signature: string | undefined;
  readonly log: Logger;
  readonly now?: () => Date;
  readonly tickMs?: number;
  /** Stop when the rollout completes or pauses (the CLI); otherwise run until the signal aborts. */
  readonly untilSettled?: boolean;
  readonly signal?: AbortSignal;
  readonly onChange?: (s: RolloutState) => void;
}

export async function runRollout(o: RunRolloutOptions): Promise<RolloutState> {
  const now = o.now ?? (() => new Date());
  const log = o.log.child({ rollout: o.initial.rolloutId });
  let state = evaluate(o.initial);
  let dirty = true;
  let saving: Promise<void> = Promise.resolve();
  const drops: Record<string, number> = {};

  const persist = async (): Promise<void> => {
    if (!dirty) return;
    dirty = false;
    const snapshot = state;
    saving = saving.then(() => writeFileAtomic(o.stateFile, JSON.stringify(snapshot, null, 2) + '\n'));
    await saving;
    o.onChange?.(snapshot);
  };

  const onMessage = (topic: string, payload: Buffer): void => {
    const t = parseJobTopic(topic);
    if (!t || !t.state || payload.length === 0) return;
    const r = parseJobStateReport(payload);
    if (!r.ok) {
      drops[r.drop] = (drops[r.drop] ?? 0) + 1;
      return;
    }
    const before = state;
    state = applyReport(state, t.serial, r.value, now());
    if (state !== before) {
      dirty = true;
      const d = state.devices[t.serial];
      log.info('device job state', { serial: t.serial, state: d?.state, version: d?.version, reason: d?.reason });
      if (before.status !== 'paused' && state.status === 'paused') log.warn('rollout paused', { reason: state.pauseReason });
    }
  };
  o.client.on('message', onMessage);
  await o.client.subscribeAsync(ALL_JOB_STATES_FILTER, { qos: 1 });

  try {
    for (;;) {
      if (o.signal?.aborted) break;
      const due = jobsToSend(state, now());
      for (const serial of due) {
        const doc: JobDocument = {
          jobId: state.rolloutId,
          rolloutId: state.rolloutId,
          manifest: o.manifest.toString('base64'),
          ...(o.signature !== undefined ? { signature: o.signature } : {}),
          issuedAt: now().toISOString(),
        };
        // Marked before publishing: a fast device may answer before the PUBACK comes back.
        const before = state;
        state = markSent(state, [serial], now());
        dirty = true;
        try {
          await o.client.publishAsync(jobTopic(serial, state.rolloutId), JSON.stringify(doc), { qos: 1, retain: true });
          log.info('job sent', { serial });
        } catch (e) {
          state = { ...state, devices: { ...state.devices, [serial]: before.devices[serial] ?? { inCohort: true, state: 'pending', updatedAt: now().toISOString() } } };
          log.warn('job publish failed', { serial, error: errorMessage(e) });
        }
      }
      await persist();
      if (o.untilSettled && state.status !== 'active') break;
      await new Promise((r) => setTimeout(r, o.tickMs ?? 200));
    }
  } finally {
    o.client.removeListener('message', onMessage);
    await o.client.unsubscribeAsync(ALL_JOB_STATES_FILTER).catch(() => undefined);
    await persist();
  }
  return state;
}
