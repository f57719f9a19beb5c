// SPDX-License-Identifier: UNLICENSED
// `connector ota rollout`: the fleet list, and whether a run starts a new rollout or resumes (and maybe
// widens) the one in its state file. Pure: texts, the manifest and time in, the state to run out.
import { createHash } from 'node:crypto';
import { ConnectorError, UsageError } from '../../shared/errors.js';
import { isSerial } from '../../shared/ota/protocol.js';
import type { ReleaseManifest } from '../../shared/ota/manifest.js';
import { createRollout, parseWindow, widenCohort, type CohortSpec, type RolloutState } from './rollout-state.js';

/** Serials separated by commas or whitespace; `#` entries are comments. */
export function parseFleet(text: string): string[] {
  const serials = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));
  const bad = serials.find((s) => !isSerial(s));
  if (bad !== undefined) throw new UsageError(`--devices: "${bad}" is not a device serial`);
  if (serials.length === 0) throw new UsageError('--devices lists no devices');
  return [...new Set(serials)];
}

export interface RolloutRequest {
  readonly manifestBytes: Buffer;
  readonly manifest: ReleaseManifest;
  readonly cohort: CohortSpec;
  /** Needed for a new rollout only. */
  readonly failThreshold?: number | undefined;
  readonly maxParallel: number;
  /** HH:MM-HH:MM in UTC; read only for a new rollout (a resumed one keeps its window). */
  readonly window?: string | undefined;
  readonly rolloutId?: string | undefined;
  readonly resumePaused: boolean;
  /** The fleet; read only for a new rollout. */
  fleet(): Promise<readonly string[]>;
  readonly stateFile: string;
  readonly now: Date;
}

export async function planRollout(existing: RolloutState | undefined, r: RolloutRequest): Promise<RolloutState> {
  const sha = createHash('sha256').update(r.manifestBytes).digest('hex');
  if (existing) {
    if (existing.release.manifestSha256 !== sha) {
      throw new ConnectorError(
        'CK_ERR_OTA_STATE',
        `${r.stateFile} belongs to release ${existing.release.version} (another manifest); use a new --state for this release`,
      );
    }
    const widened = widenCohort(existing, r.cohort, r.now);
    return r.resumePaused && widened.status === 'paused' ? { ...widened, status: 'active' } : widened;
  }
  if (r.failThreshold === undefined) throw new UsageError('--fail-threshold N is required');
  return createRollout({
    rolloutId: r.rolloutId ?? `rel-${r.manifest.version}-${sha.slice(0, 8)}`,
    release: { version: r.manifest.version, manifestSha256: sha },
    fleet: await r.fleet(),
    cohort: r.cohort,
    failThreshold: r.failThreshold,
    maxParallel: r.maxParallel,
    ...(r.window ? { window: parseWindow(r.window) } : {}),
    now: r.now,
  });
}

/** The CLI's exit code for a finished run: 0 completed, 3 paused at the failure threshold, 1 otherwise. */
export function rolloutExitCode(s: RolloutState): number {
  return s.status === 'paused' ? 3 : s.status === 'completed' ? 0 : 1;
}
