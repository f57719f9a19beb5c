// SPDX-License-Identifier: UNLICENSED
// Rollouts as an operator sees them: the OTA rollout controller's state files (`connector ota rollout
// --state FILE`, one per rollout) summarised live, each unit's place in it, filtered to the units the
// operator may see (an msp sees its tenants' units and counts over them only). Pure: the parsed files and
// the registry come in. A file that is not a rollout state is reported by name, not thrown.
import type { Registry } from '../../shared/registry/registry.js';
import { TERMINAL_JOB_STATES } from '../../shared/ota/protocol.js';
import { canSee, type Operator } from './operators.js';

export interface RolloutUnit {
  serial: string;
  tenant: string | null;
  inCohort: boolean;
  state: string;
  version: string | null;
  reason: string | null;
  /** Download progress, 0-100, while downloading. */
  percent: number | null;
  updatedAt: string;
}

export interface RolloutView {
  id: string;
  file: string;
  version: string;
  status: string;
  pauseReason: string | null;
  createdAt: string;
  failThreshold: number;
  counts: { units: number; inCohort: number; succeeded: number; failed: number; inProgress: number; pending: number };
  units: RolloutUnit[];
}

const FAILED = new Set(['failed', 'rolled-back', 'rejected']);
const TERMINAL = new Set<string>(TERMINAL_JOB_STATES);

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** One state file's document as the console shows it; a string says why it is not one. */
export function rolloutView(doc: unknown, file: string, reg: Registry, op: Operator): RolloutView | string {
  if (!doc || typeof doc !== 'object') return `${file}: not a JSON object`;
  const d = doc as Record<string, unknown>;
  const release = d['release'] as Record<string, unknown> | undefined;
  const devices = d['devices'];
  if (
    d['v'] !== 1 ||
    typeof d['rolloutId'] !== 'string' ||
    typeof release?.['version'] !== 'string' ||
    !devices ||
    typeof devices !== 'object'
  ) {
    return `${file}: not a rollout state (v 1 with rolloutId, release.version and devices)`;
  }
  const units: RolloutUnit[] = [];
  for (const [serial, raw] of Object.entries(devices as Record<string, Record<string, unknown>>)) {
    const tenant = reg.devices[serial]?.tenant ?? null;
    if (!canSee(op, tenant ?? undefined)) continue;
    const progress = raw['progress'] as { bytes?: unknown; total?: unknown } | undefined;
    const percent =
      typeof progress?.bytes === 'number' && typeof progress.total === 'number' && progress.total > 0
        ? Math.min(100, Math.round((progress.bytes / progress.total) * 100))
        : null;
    units.push({
      serial,
      tenant,
      inCohort: raw['inCohort'] === true,
      state: str(raw['state']) ?? 'unknown',
      version: str(raw['version']),
      reason: str(raw['reason']),
      percent,
      updatedAt: str(raw['updatedAt']) ?? '',
    });
  }
  units.sort((a, b) => a.serial.localeCompare(b.serial));
  const cohort = units.filter((u) => u.inCohort);
  return {
    id: d['rolloutId'],
    file,
    version: release['version'],
    status: str(d['status']) ?? 'unknown',
    pauseReason: str(d['pauseReason']),
    createdAt: str(d['createdAt']) ?? '',
    failThreshold: typeof d['failThreshold'] === 'number' ? d['failThreshold'] : 0,
    counts: {
      units: units.length,
      inCohort: cohort.length,
      succeeded: cohort.filter((u) => u.state === 'succeeded').length,
      failed: cohort.filter((u) => FAILED.has(u.state)).length,
      inProgress: cohort.filter((u) => u.state !== 'pending' && !TERMINAL.has(u.state)).length,
      pending: cohort.filter((u) => u.state === 'pending').length,
    },
    units,
  };
}
