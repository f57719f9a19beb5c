// SPDX-License-Identifier: UNLICENSED
// An operator's hands on running rollouts (the rollout controller's API, the console): pause, resume and
// widen, and the rule that at most one rollout sends jobs at a time (two would race on a unit's one
// running job). Pure: states, the operator's name and time in, the new state or a refusal out.
import { ConnectorError } from '../../shared/errors.js';
import { evaluate, failures, widenCohort, type CohortSpec, type RolloutState } from './rollout-state.js';

function refuse(msg: string): ConnectorError {
  return new ConnectorError('CK_ERR_OTA_STATE', msg);
}

/** Stops sending jobs; jobs already sent run to their end (a unit mid-update is not interrupted). */
export function pauseRollout(s: RolloutState, by: string, now: Date): RolloutState {
  if (s.status === 'completed') throw refuse(`rollout ${s.rolloutId} has completed; there is nothing to pause`);
  if (s.status === 'paused') return s;
  return { ...s, status: 'paused', pauseReason: `paused by ${by} at ${now.toISOString()}` };
}

/**
 * Sends jobs again. A rollout paused at its failure threshold stays paused unless the operator says
 * `acceptFailures`: resuming it as it is would pause it again on the next report.
 */
export function resumeRollout(s: RolloutState, others: readonly RolloutState[], acceptFailures: boolean): RolloutState {
  if (s.status === 'completed') throw refuse(`rollout ${s.rolloutId} has completed; widen its cohort to go on`);
  if (s.status === 'active') return s;
  assertNoOtherActive(s, others);
  const resumed: RolloutState = { ...s, status: 'active' };
  delete (resumed as { pauseReason?: string }).pauseReason;
  const next = evaluate(resumed);
  if (next.status !== 'paused') return next;
  if (!acceptFailures)
    throw refuse(`rollout ${s.rolloutId} is at its failure threshold (${next.pauseReason}); resume with acceptFailures to go on anyway`);
  // The operator has looked at the failures: the threshold counts again from here.
  return { ...resumed, failThreshold: failures(s) + s.failThreshold };
}

/** A later, larger cohort of the same rollout; a completed rollout becomes active again. */
export function widenRollout(s: RolloutState, cohort: CohortSpec, others: readonly RolloutState[], now: Date): RolloutState {
  const next = widenCohort(s, cohort, now);
  if (next.status === 'active' && s.status !== 'active') assertNoOtherActive(s, others);
  return next;
}

/** Refuses a rollout that would send jobs while another one does. */
export function assertNoOtherActive(s: Pick<RolloutState, 'rolloutId'>, others: readonly RolloutState[]): void {
  const active = others.find((o) => o.rolloutId !== s.rolloutId && o.status === 'active');
  if (active) throw refuse(`rollout ${active.rolloutId} is active; pause it or let it complete first (one rollout sends jobs at a time)`);
}
