// SPDX-License-Identifier: UNLICENSED
// The rollout controller's loop: send the jobs the state says are due, fold device reports into the state,
// persist after every change, stop when the rollout settles (or when told). The broker, the state file and
// the clock are ports; the decisions are rollout-state.ts's.
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { jobTopic, parseJobStateReport, parseJobStateReportTopic, parseJobTopic, type JobDocument } from '../../shared/ota/protocol.js';
import { applyReport, evaluate, jobsToSend, markSent, type RolloutState } from './rollout-state.js';

/** The controller's side of the OTA channel. */
export interface RolloutChannel {
  /** Delivers every device's job-state reports to `onReport` from now on. */
  subscribeReports(onReport: (topic: string, payload: Buffer) => void): Promise<void>;
  /** Stops delivering reports; never throws. */
  unsubscribeReports(): Promise<void>;
  /** Publishes one job document (retained, at least once). */
  publishJob(topic: string, payload: string): Promise<void>;
}

export interface RolloutStore {
  /** Persists a snapshot so a restarted controller resumes from it. */
  save(state: RolloutState): Promise<void>;
}

export interface RolloutRunOptions {
  readonly channel: RolloutChannel;
  readonly store: RolloutStore;
  readonly initial: RolloutState;
  /** Signed manifest bytes and signature text, sent verbatim in every job. */
  readonly manifest: Buffer;
  readonly signature: string | undefined;
  readonly log: Logger;
  /** Wall clock: job and report times, maintenance windows. */
  readonly now: () => Date;
  /** Resolves after `ms`: the pause between two rounds. */
  readonly wait: (ms: number) => Promise<void>;
  readonly tickMs?: number;
  /** Stop when the rollout completes or pauses (the CLI); otherwise run until the signal aborts. */
  readonly untilSettled?: boolean;
  readonly signal?: AbortSignal;
  readonly onChange?: (s: RolloutState) => void;
  /** An operator's commands (pause, resume, widen), applied at the top of each round; same object when none. */
  readonly control?: (s: RolloutState) => RolloutState;
}

export async function runRolloutLoop(o: RolloutRunOptions): Promise<RolloutState> {
  const now = o.now;
  const log = o.log.child({ rollout: o.initial.rolloutId });
  let state = evaluate(o.initial);
  let dirty = true;
  let saving: Promise<void> = Promise.resolve();
  const drops: Record<string, number> = {};

  const persist = async (): Promise<void> => {
    if (!dirty) return;
    dirty = false;
    const snapshot = state;
    saving = saving.then(() => o.store.save(snapshot));
    await saving;
    o.onChange?.(snapshot);
  };

  const onReport = (topic: string, payload: Buffer): void => {
    // Current agents report on one topic per device; older ones on one per job (the job id in the topic).
    const legacy = parseJobTopic(topic);
    const serial = legacy?.state ? legacy.serial : parseJobStateReportTopic(topic);
    if (serial === undefined || payload.length === 0) return;
    const r = parseJobStateReport(payload);
    if (!r.ok) {
      drops[r.drop] = (drops[r.drop] ?? 0) + 1;
      return;
    }
    if (legacy?.state && legacy.jobId !== r.value.jobId) {
      drops['job-id-mismatch'] = (drops['job-id-mismatch'] ?? 0) + 1;
      return;
    }
    const before = state;
    state = applyReport(state, serial, r.value, now());
    if (state !== before) {
      dirty = true;
      const d = state.devices[serial];
      log.info('device job state', { serial, state: d?.state, version: d?.version, reason: d?.reason });
      if (before.status !== 'paused' && state.status === 'paused') log.warn('rollout paused', { reason: state.pauseReason });
    }
  };
  await o.channel.subscribeReports(onReport);

  try {
    for (;;) {
      if (o.signal?.aborted) break;
      if (o.control) {
        const before = state;
        state = o.control(state);
        if (state !== before) {
          dirty = true;
          log.info('rollout changed by an operator', { status: state.status, reason: state.pauseReason });
        }
      }
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
          await o.channel.publishJob(jobTopic(serial, state.rolloutId), JSON.stringify(doc));
          log.info('job sent', { serial });
        } catch (e) {
          state = {
            ...state,
            devices: {
              ...state.devices,
              [serial]: before.devices[serial] ?? { inCohort: true, state: 'pending', updatedAt: now().toISOString() },
            },
          };
          log.warn('job publish failed', { serial, error: errorMessage(e) });
        }
      }
      await persist();
      if (o.untilSettled && state.status !== 'active') break;
      await o.wait(o.tickMs ?? 200);
    }
  } finally {
    await o.channel.unsubscribeReports();
    await persist();
  }
  return state;
}
