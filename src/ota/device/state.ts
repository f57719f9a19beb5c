// SPDX-License-Identifier: UNLICENSED
// The updater's persisted state. Each phase names the next idempotent action to run, so after a crash
// (kill -9, power loss) the updater re-runs the phase it was in and always ends on a good version:
//   idle -> downloading -> verifying -> installing -> switching -> health-check -> idle (committed)
//                                                                \-> rolling-back -> idle (previous)
//   verifying -> os-upgrading -> os-rebooting -> idle       (sysupgrade releases)
// Pure: no I/O here; see state-store.ts for the file.
import type { ReleaseArtifact } from '../manifest.js';
import type { JobState } from '../protocol.js';

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
