// SPDX-License-Identifier: UNLICENSED
// Rollout bookkeeping as pure functions over a plain JSON object: cohort choice, which jobs to send now,
// device reports, the failure threshold that pauses the rollout, maintenance windows. The controller
// (rollout-run.ts, over its ports) persists the object after every change; adapters own all I/O.
import { createHash } from 'node:crypto';
import { ConnectorError } from '../../shared/errors.js';
import { isSerial, isTerminal, type JobState, type JobStateReport } from '../../shared/ota/protocol.js';

export type DeviceRolloutState = 'pending' | 'sent' | JobState;

export interface DeviceEntry {
  readonly inCohort: boolean;
  readonly state: DeviceRolloutState;
  readonly version?: string;
  readonly reason?: string;
  readonly detail?: string;
  readonly progress?: { readonly bytes: number; readonly total: number };
  readonly updatedAt: string;
}

/** Minutes after midnight UTC; end < start means the window spans midnight. */
export interface MaintenanceWindow {
  readonly startMin: number;
  readonly endMin: number;
}

export type CohortSpec =
  { readonly kind: 'percent'; readonly percent: number } | { readonly kind: 'list'; readonly serials: readonly string[] };

export interface RolloutState {
  readonly v: 1;
  readonly rolloutId: string;
  readonly release: { readonly version: string; readonly manifestSha256: string };
  readonly createdAt: string;
  readonly failThreshold: number;
  readonly maxParallel: number;
  readonly window?: MaintenanceWindow;
  readonly status: 'active' | 'paused' | 'completed';
  readonly pauseReason?: string;
  readonly devices: Readonly<Record<string, DeviceEntry>>;
}

export const FAILED_STATES: readonly DeviceRolloutState[] = ['failed', 'rolled-back', 'rejected'];

function usage(msg: string): ConnectorError {
  return new ConnectorError('CK_ERR_CONFIG_INVALID', msg);
}

export function parseCohort(spec: string): CohortSpec {
  const m = /^(\d{1,3}(?:\.\d+)?)%$/.exec(spec.trim());
  if (m) {
    const percent = Number(m[1]);
    if (percent <= 0 || percent > 100) throw usage(`cohort "${spec}": percent must be in (0, 100]`);
    return { kind: 'percent', percent };
  }
  const serials = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const badOne = serials.find((s) => !isSerial(s));
  if (serials.length === 0 || badOne !== undefined)
    throw usage(
      `cohort "${spec}": give a percentage like 10% or serials separated by commas${badOne ? ` ("${badOne}" is not a serial)` : ''}`,
    );
  return { kind: 'list', serials };
}

export function parseWindow(spec: string): MaintenanceWindow {
  const m = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(spec.trim());
  const nums = m ? m.slice(1).map(Number) : [];
  const [h1, m1, h2, m2] = nums;
  if (h1 === undefined || m1 === undefined || h2 === undefined || m2 === undefined || h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59) {
    throw usage(`window "${spec}": expected HH:MM-HH:MM in UTC, e.g. 22:00-04:00`);
  }
  const w = { startMin: h1 * 60 + m1, endMin: h2 * 60 + m2 };
  if (w.startMin === w.endMin) throw usage(`window "${spec}": start and end are equal; omit --window for "always"`);
  return w;
}

export function inWindow(w: MaintenanceWindow | undefined, at: Date): boolean {
  if (!w) return true;
  const min = at.getUTCHours() * 60 + at.getUTCMinutes();
  return w.startMin < w.endMin ? min >= w.startMin && min < w.endMin : min >= w.startMin || min < w.endMin;
}

/** Stable per-rollout order, so 10% then 50% of the same rollout is a superset, not a reshuffle. */
function rank(rolloutId: string, serial: string): string {
  return createHash('sha256').update(`${rolloutId}\0${serial}`).digest('hex');
}

export function selectCohort(rolloutId: string, fleet: readonly string[], spec: CohortSpec): string[] {
  if (spec.kind === 'list') {
    const unknown = spec.serials.filter((s) => !fleet.includes(s));
    if (unknown.length > 0) throw usage(`cohort names devices not in the fleet list: ${unknown.join(', ')}`);
    return [...spec.serials];
  }
  // Rounded down but at least one device, so "10%" of a small fleet still tests something.
  const n = Math.min(fleet.length, Math.max(1, Math.floor((fleet.length * spec.percent) / 100 + 1e-9)));
  return [...fleet].sort((a, b) => (rank(rolloutId, a) < rank(rolloutId, b) ? -1 : 1)).slice(0, n);
}

export interface CreateRolloutOptions {
  readonly rolloutId: string;
  readonly release: RolloutState['release'];
  readonly fleet: readonly string[];
  readonly cohort: CohortSpec;
  readonly failThreshold: number;
  readonly maxParallel: number;
  readonly window?: MaintenanceWindow;
  readonly now: Date;
}

export function createRollout(o: CreateRolloutOptions): RolloutState {
  if (!Number.isInteger(o.failThreshold) || o.failThreshold < 1) throw usage('fail threshold must be an integer >= 1');
  if (!Number.isInteger(o.maxParallel) || o.maxParallel < 1) throw usage('max parallel must be an integer >= 1');
  const bad = o.fleet.find((s) => !isSerial(s));
  if (bad !== undefined) throw usage(`fleet: "${bad}" is not a device serial`);
  const cohort = new Set(selectCohort(o.rolloutId, o.fleet, o.cohort));
  const at = o.now.toISOString();
  const devices: Record<string, DeviceEntry> = {};
  for (const s of o.fleet) devices[s] = { inCohort: cohort.has(s), state: 'pending', updatedAt: at };
  return {
    v: 1,
    rolloutId: o.rolloutId,
    release: o.release,
    createdAt: at,
    failThreshold: o.failThreshold,
    maxParallel: o.maxParallel,
    ...(o.window ? { window: o.window } : {}),
    status: 'active',
    devices,
  };
}

/** Widens the cohort of an existing rollout (a later, larger percentage); never shrinks it. */
export function widenCohort(s: RolloutState, spec: CohortSpec, now: Date): RolloutState {
  const add = new Set(selectCohort(s.rolloutId, Object.keys(s.devices), spec));
  const devices: Record<string, DeviceEntry> = {};
  for (const [serial, d] of Object.entries(s.devices))
    devices[serial] = add.has(serial) && !d.inCohort ? { ...d, inCohort: true, updatedAt: now.toISOString() } : d;
  return evaluate({ ...s, devices, status: s.status === 'completed' ? 'active' : s.status });
}

export function failures(s: RolloutState): number {
  return Object.values(s.devices).filter((d) => FAILED_STATES.includes(d.state)).length;
}

/** Pauses at the threshold, completes when every cohort device has finished. */
export function evaluate(s: RolloutState): RolloutState {
  if (s.status === 'paused') return s;
  const f = failures(s);
  if (f >= s.failThreshold) return { ...s, status: 'paused', pauseReason: `${f} device(s) failed, threshold is ${s.failThreshold}` };
  const cohort = Object.values(s.devices).filter((d) => d.inCohort);
  const done = cohort.every((d) => d.state !== 'pending' && d.state !== 'sent' && isTerminal(d.state));
  return done ? { ...s, status: 'completed' } : { ...s, status: 'active' };
}

export function jobsToSend(s: RolloutState, now: Date): string[] {
  if (s.status !== 'active' || !inWindow(s.window, now)) return [];
  const entries = Object.entries(s.devices);
  const inFlight = entries.filter(([, d]) => d.inCohort && d.state !== 'pending' && !isTerminalish(d.state)).length;
  const room = Math.max(0, s.maxParallel - inFlight);
  return entries
    .filter(([, d]) => d.inCohort && d.state === 'pending')
    .map(([serial]) => serial)
    .sort()
    .slice(0, room);
}

function isTerminalish(st: DeviceRolloutState): boolean {
  return st !== 'pending' && st !== 'sent' && isTerminal(st);
}

export function markSent(s: RolloutState, serials: readonly string[], now: Date): RolloutState {
  const devices = { ...s.devices };
  for (const serial of serials) {
    const d = devices[serial];
    if (d) devices[serial] = { ...d, state: 'sent', updatedAt: now.toISOString() };
  }
  return { ...s, devices };
}

/** Applies one device report; stale or foreign reports leave the state unchanged (same object). */
export function applyReport(s: RolloutState, serial: string, r: JobStateReport, now: Date): RolloutState {
  const d = s.devices[serial];
  if (!d || r.jobId !== s.rolloutId || !d.inCohort || d.state === 'pending') return s;
  // A finished job stays finished: a late progress report (QoS 1 redelivery) must not reopen it.
  if (isTerminalish(d.state) && (d.state === r.state || !isTerminal(r.state))) return s;
  const entry: DeviceEntry = {
    inCohort: true,
    state: r.state,
    version: r.version,
    updatedAt: now.toISOString(),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(r.detail !== undefined ? { detail: r.detail } : {}),
    ...(r.progress !== undefined ? { progress: r.progress } : {}),
  };
  return evaluate({ ...s, devices: { ...s.devices, [serial]: entry } });
}

export function parseRolloutState(text: string, file: string): RolloutState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConnectorError(
      'CK_ERR_OTA_STATE',
      `rollout state ${file} is not JSON; restore it or start a new rollout with another --state`,
      { cause: e },
    );
  }
  const o = raw as Partial<RolloutState>;
  if (o.v !== 1 || typeof o.rolloutId !== 'string' || typeof o.devices !== 'object' || o.devices === null) {
    throw new ConnectorError('CK_ERR_OTA_STATE', `rollout state ${file} is not a connector rollout state (v1)`);
  }
  return o as RolloutState;
}

export function formatStatus(s: RolloutState): string {
  const rows = Object.entries(s.devices)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([serial, d]) => {
      const prog = d.progress && d.state === 'downloading' ? ` ${Math.floor((d.progress.bytes / d.progress.total) * 100)}%` : '';
      return `  ${serial.padEnd(20)} ${(d.inCohort ? d.state + prog : '-').padEnd(14)} ${(d.version ?? '').padEnd(10)} ${d.reason ?? ''}`;
    });
  const counts = new Map<string, number>();
  for (const d of Object.values(s.devices)) if (d.inCohort) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
  const summary = [...counts.entries()].map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    `rollout ${s.rolloutId}: release ${s.release.version}, ${s.status}${s.pauseReason ? ` (${s.pauseReason})` : ''}`,
    `cohort ${Object.values(s.devices).filter((d) => d.inCohort).length}/${Object.keys(s.devices).length}, failures ${failures(s)}/${s.failThreshold}: ${summary}`,
    `  ${'SERIAL'.padEnd(20)} ${'STATE'.padEnd(14)} ${'VERSION'.padEnd(10)} REASON`,
    ...rows,
  ].join('\n');
}
