// SPDX-License-Identifier: UNLICENSED
// The updater's persisted state. Each phase names the next idempotent action to run, so after a crash
// (kill -9, power loss) the updater re-runs the phase it was in and always ends on a good version:
//   idle -> downloading -> verifying -> installing -> switching -> health-check -> idle (committed)
//                                                                \-> rolling-back -> idle (previous)
//   verifying -> os-upgrading -> os-rebooting -> idle       (sysupgrade releases)
// Pure: no I/O here; see state-store.ts for the file.
import type { ReleaseArtifact } from '../../../shared/ota/manifest.js';
import type { JobState } from '../../../shared/ota/protocol.js';

export type SlotName = 'a' | 'b';
export const otherSlot = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

export interface ActiveJob {
  readonly jobId: string;
  readonly rolloutId: string;
  readonly version: string;
  readonly fromVersion: string;
  /** Signed manifest bytes, base64; kept so the new slot records exactly what was installed. */
  readonly manifest: string;
  readonly artifact: ReleaseArtifact;
}

export type UpdaterState =
  | { readonly phase: 'idle' }
  | { readonly phase: 'downloading'; readonly job: ActiveJob }
  | { readonly phase: 'verifying'; readonly job: ActiveJob }
  | { readonly phase: 'installing'; readonly job: ActiveJob; readonly from: SlotName; readonly to: SlotName }
  | { readonly phase: 'switching'; readonly job: ActiveJob; readonly from: SlotName; readonly to: SlotName }
  | { readonly phase: 'health-check'; readonly job: ActiveJob; readonly from: SlotName; readonly to: SlotName; readonly attempts: number }
  | { readonly phase: 'rolling-back'; readonly job: ActiveJob; readonly from: SlotName; readonly to: SlotName; readonly detail: string }
  | { readonly phase: 'os-upgrading'; readonly job: ActiveJob }
  | { readonly phase: 'os-rebooting'; readonly job: ActiveJob };

export type UpdaterPhase = UpdaterState['phase'];

export interface HistoryEntry {
  readonly jobId: string;
  readonly state: JobState;
  readonly version: string;
  readonly at: string;
}

export interface PersistedUpdater {
  readonly v: 1;
  readonly state: UpdaterState;
  /** Most recent finished jobs, newest last; QoS 1 and retained jobs arrive more than once. */
  readonly history: readonly HistoryEntry[];
}

export const HISTORY_MAX = 32;
export const INITIAL: PersistedUpdater = { v: 1, state: { phase: 'idle' }, history: [] };

export function withHistory(p: PersistedUpdater, entry: HistoryEntry): PersistedUpdater {
  const history = [...p.history.filter((h) => h.jobId !== entry.jobId), entry].slice(-HISTORY_MAX);
  return { v: 1, state: { phase: 'idle' }, history };
}

/** How a persisted phase is reported to the controller. */
export function jobStateOf(phase: UpdaterPhase): JobState {
  switch (phase) {
    case 'downloading':
      return 'downloading';
    case 'verifying':
      return 'verifying';
    case 'installing':
      return 'installing';
    case 'switching':
      return 'switching';
    case 'health-check':
      return 'health-check';
    case 'rolling-back':
      return 'health-check';
    case 'os-upgrading':
      return 'installing';
    case 'os-rebooting':
      return 'rebooting';
    case 'idle':
      return 'queued';
  }
}

/**
 * Health-check attempts count like a bootloader's boot counter: a crash during the check counts as an
 * attempt, so a release that kills the agent cannot loop forever.
 */
export const MAX_HEALTH_ATTEMPTS = 2;

/** Progress is reported at most every `step` of the total, to keep MQTT quiet on slow links. */
export function progressBucket(bytes: number, total: number, steps = 10): number {
  return total <= 0 ? steps : Math.floor((bytes / total) * steps);
}

export function parsePersisted(text: string): PersistedUpdater | undefined {
  try {
    const raw = JSON.parse(text) as Partial<PersistedUpdater>;
    if (raw.v !== 1 || typeof raw.state !== 'object' || raw.state === null || !Array.isArray(raw.history)) return undefined;
    return raw as PersistedUpdater;
  } catch {
    return undefined;
  }
}

/** What the action of the current phase produced; the adapter reports it, `transition` decides. */
export type StepOutcome =
  | { readonly kind: 'downloaded' }
  | { readonly kind: 'download-failed'; readonly detail: string }
  | { readonly kind: 'hash-ok'; readonly currentSlot: SlotName }
  | { readonly kind: 'hash-mismatch'; readonly detail: string }
  | { readonly kind: 'installed' }
  | { readonly kind: 'install-failed'; readonly detail: string }
  | { readonly kind: 'switched' }
  | { readonly kind: 'health-start' }
  | { readonly kind: 'healthy' }
  | { readonly kind: 'unhealthy'; readonly detail: string }
  | { readonly kind: 'switched-back' }
  | { readonly kind: 'dry-run-exit'; readonly code: number }
  | { readonly kind: 'flash-exit'; readonly code: number }
  | { readonly kind: 'booted' };

export type FinishReason = 'download-failed' | 'artifact-mismatch' | 'install-failed' | 'health-check-failed' | 'sysupgrade-failed';
export type Transition =
  | { readonly next: Exclude<UpdaterState, { phase: 'idle' }> }
  | { readonly done: 'succeeded' | 'failed' | 'rejected' | 'rolled-back'; readonly reason?: FinishReason; readonly detail?: string };

/**
 * The updater's state machine: the phase it is in plus what its action produced gives the next phase or
 * the job's end. Pure, so every edge is unit-tested; an outcome that does not belong to the phase is a
 * programming error and throws.
 */
export function transition(s: UpdaterState, o: StepOutcome): Transition {
  const wrong = (): never => {
    throw new TypeError(`updater: outcome "${o.kind}" is not valid in phase "${s.phase}"`);
  };
  switch (s.phase) {
    case 'idle':
      return wrong();
    case 'downloading':
      if (o.kind === 'downloaded') return { next: { phase: 'verifying', job: s.job } };
      if (o.kind === 'download-failed') return { done: 'failed', reason: 'download-failed', detail: o.detail };
      return wrong();
    case 'verifying':
      if (o.kind === 'hash-mismatch') return { done: 'rejected', reason: 'artifact-mismatch', detail: o.detail };
      if (o.kind !== 'hash-ok') return wrong();
      if (s.job.artifact.kind === 'sysupgrade') return { next: { phase: 'os-upgrading', job: s.job } };
      return { next: { phase: 'installing', job: s.job, from: o.currentSlot, to: otherSlot(o.currentSlot) } };
    case 'installing':
      if (o.kind === 'installed') return { next: { phase: 'switching', job: s.job, from: s.from, to: s.to } };
      if (o.kind === 'install-failed') return { done: 'failed', reason: 'install-failed', detail: o.detail };
      return wrong();
    case 'switching':
      if (o.kind === 'switched') return { next: { phase: 'health-check', job: s.job, from: s.from, to: s.to, attempts: 0 } };
      return wrong();
    case 'health-check':
      if (o.kind === 'health-start') {
        if (s.attempts + 1 > MAX_HEALTH_ATTEMPTS) {
          return {
            next: {
              phase: 'rolling-back',
              job: s.job,
              from: s.from,
              to: s.to,
              detail: `no healthy start in ${MAX_HEALTH_ATTEMPTS} attempts`,
            },
          };
        }
        return { next: { ...s, attempts: s.attempts + 1 } };
      }
      if (o.kind === 'healthy') return { done: 'succeeded' };
      if (o.kind === 'unhealthy') return { next: { phase: 'rolling-back', job: s.job, from: s.from, to: s.to, detail: o.detail } };
      return wrong();
    case 'rolling-back':
      if (o.kind === 'switched-back') return { done: 'rolled-back', reason: 'health-check-failed', detail: s.detail };
      return wrong();
    case 'os-upgrading':
      if (o.kind === 'dry-run-exit') {
        return o.code === 0
          ? { next: { phase: 'os-rebooting', job: s.job } }
          : { done: 'failed', reason: 'sysupgrade-failed', detail: `sysupgrade -T exited ${o.code}` };
      }
      return wrong();
    case 'os-rebooting':
      if (o.kind === 'flash-exit')
        return o.code === 0 ? { next: s } : { done: 'failed', reason: 'sysupgrade-failed', detail: `sysupgrade exited ${o.code}` };
      // Running again after the flash means the new OS booted and brought the agent up.
      if (o.kind === 'booted') return { done: 'succeeded' };
      return wrong();
  }
}
