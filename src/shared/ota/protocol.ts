// SPDX-License-Identifier: UNLICENSED
// The MQTT contract between the rollout controller and devices: topic names and payloads. Pure.
// Topics (serial = the device certificate CN, which mosquitto makes the username and client id):
//   connector/v1/<serial>/status               device -> all, retained, QoS 1; Last Will {"online":false}
//   connector/v1/<serial>/jobs/<jobId>         controller -> device, retained, QoS 1: the job document
//   connector/v1/<serial>/job-state            device -> controller, retained, QoS 1: every state change of
//                                              its job (jobId in the payload). One topic per device, so a
//                                              device can make the broker retain at most two messages.
//   connector/v1/<serial>/jobs/<jobId>/state   the same from agents before job-state existed (legacy: one
//                                              retained topic per job id the device chooses; the broker
//                                              allows it only with `broker-config --legacy-job-state`)
import { boolean, check, integer, isRecord, object, oneOf, optional, refine, string, type Schema } from '../schema/schema.js';

/** Why a device refused a release before touching anything (the device's gate, agent/core/ota/verify-release.ts). */
export type RejectReason = 'unsigned' | 'bad-signature' | 'bad-manifest' | 'wrong-board' | 'incompatible' | 'downgrade';

export const TOPIC_ROOT = 'connector/v1';

export const statusTopic = (serial: string): string => `${TOPIC_ROOT}/${serial}/status`;
export const jobTopic = (serial: string, jobId: string): string => `${TOPIC_ROOT}/${serial}/jobs/${jobId}`;
export const jobStateTopic = (serial: string, jobId: string): string => `${TOPIC_ROOT}/${serial}/jobs/${jobId}/state`;
export const deviceJobsFilter = (serial: string): string => `${TOPIC_ROOT}/${serial}/jobs/+`;
export const jobStateReportTopic = (serial: string): string => `${TOPIC_ROOT}/${serial}/job-state`;
export const ALL_JOB_STATES_FILTER = `${TOPIC_ROOT}/+/jobs/+/state`;
export const ALL_JOB_STATE_REPORTS_FILTER = `${TOPIC_ROOT}/+/job-state`;
export const ALL_STATUS_FILTER = `${TOPIC_ROOT}/+/status`;
/** A unit's health (tunnel, counters, MAC and neighbour tables, alarms), retained, for the operators' console. */
export const healthTopic = (serial: string): string => `${TOPIC_ROOT}/${serial}/health`;
export const ALL_HEALTH_FILTER = `${TOPIC_ROOT}/+/health`;

const SERIAL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const JOB_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const isSerial = (s: string): boolean => SERIAL_RE.test(s);
export const isJobId = (s: string): boolean => JOB_ID_RE.test(s);

/** What the controller sends: the signed manifest verbatim (its bytes are what the signature covers). */
export interface JobDocument {
  readonly jobId: string;
  readonly rolloutId: string;
  /** Manifest file bytes, base64, so no JSON re-encoding can change what was signed. */
  readonly manifest: string;
  /** usign signature file text; absent means unsigned (devices refuse). */
  readonly signature?: string;
  readonly issuedAt: string;
  /** Install even when the device already runs this version (the operator's explicit choice). */
  readonly force?: boolean;
}

/**
 * The largest MQTT packet either side accepts: a job carries a manifest of at most 64 KiB, base64, with
 * its signature. The device announces it in CONNECT; the generated broker config enforces it.
 */
export const MQTT_MAX_PACKET_BYTES = 128 * 1024;

/** Device-side job states, in order; the last four are terminal. */
export type JobState =
  | 'queued'
  | 'downloading'
  | 'verifying'
  | 'installing'
  | 'switching'
  | 'health-check'
  | 'rebooting'
  | 'succeeded'
  | 'failed'
  | 'rolled-back'
  | 'rejected';
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'rolled-back', 'rejected'];
export const isTerminal = (s: JobState): boolean => TERMINAL_JOB_STATES.includes(s);

export interface JobStateReport {
  readonly jobId: string;
  readonly state: JobState;
  /** Agent version the device runs after this state (the proof a rollout reached it). */
  readonly version: string;
  readonly targetVersion?: string;
  readonly reason?:
    | RejectReason
    | 'health-check-failed'
    | 'download-failed'
    | 'artifact-mismatch'
    | 'install-failed'
    | 'sysupgrade-failed'
    | 'already-installed';
  readonly detail?: string;
  readonly progress?: { readonly bytes: number; readonly total: number };
  readonly at: string;
}

export interface DeviceStatus {
  readonly online: boolean;
  readonly version?: string;
  readonly board?: string;
  readonly job?: { readonly jobId: string; readonly state: JobState };
  readonly at?: string;
}

const JOB_STATES: readonly JobState[] = [
  'queued',
  'downloading',
  'verifying',
  'installing',
  'switching',
  'health-check',
  'rebooting',
  'succeeded',
  'failed',
  'rolled-back',
  'rejected',
];

export type Parsed<T> = { ok: true; value: T } | { ok: false; drop: string };

// Unknown keys are ignored: controller and devices run different versions during a rollout, and a newer
// sender may add a field. A known field of the wrong type is a drop named after the field.
const tolerant = { unknownKeys: 'ignore' } as const;
const anyString = (): Schema<string> => string({ allowEmpty: true });

const JOB_DOCUMENT_SCHEMA = object(
  {
    jobId: refine(anyString(), (id) => (isJobId(id) ? undefined : 'is not a job id')),
    rolloutId: anyString(),
    manifest: anyString(),
    signature: optional(anyString()),
    issuedAt: anyString(),
    force: optional(boolean()),
  },
  tolerant,
);

const count = integer(0, Number.MAX_SAFE_INTEGER);
const JOB_STATE_REPORT_SCHEMA = object(
  {
    jobId: anyString(),
    version: anyString(),
    at: anyString(),
    state: oneOf(JOB_STATES),
    targetVersion: optional(anyString()),
    reason: optional(anyString()),
    detail: optional(anyString()),
    progress: optional(object({ bytes: count, total: count }, tolerant)),
  },
  tolerant,
);

/** A JSON object payload checked by `schema`; the drop reason comes from the first bad field. */
function parsePayload<T>(payload: Buffer, schema: Schema<T>, drops: Readonly<Record<string, string>>, otherwise: string): Parsed<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, drop: 'not-json' };
  }
  if (!isRecord(raw)) return { ok: false, drop: 'not-object' };
  const r = check(schema, raw);
  return r.ok ? r : { ok: false, drop: drops[String(r.issue.path[0])] ?? otherwise };
}

/** Payloads from the network are counted drops when malformed, never exceptions. */
export function parseJobDocument(payload: Buffer): Parsed<JobDocument> {
  const r = parsePayload(payload, JOB_DOCUMENT_SCHEMA, { jobId: 'bad-job-id', signature: 'bad-signature-field' }, 'missing-field');
  if (!r.ok) return r;
  const { jobId, rolloutId, manifest, signature, issuedAt } = r.value;
  return { ok: true, value: { jobId, rolloutId, manifest, issuedAt, ...(signature !== undefined ? { signature } : {}) } };
}

export function parseJobStateReport(payload: Buffer): Parsed<JobStateReport> {
  const r = parsePayload(
    payload,
    JOB_STATE_REPORT_SCHEMA,
    { state: 'bad-state', targetVersion: 'bad-field', reason: 'bad-field', detail: 'bad-field', progress: 'bad-field' },
    'missing-field',
  );
  if (!r.ok) return r;
  const { jobId, state, version, at, targetVersion, reason, detail, progress } = r.value;
  return {
    ok: true,
    value: {
      jobId,
      state,
      version,
      ...(targetVersion !== undefined ? { targetVersion } : {}),
      // A reason this version does not know is kept as text: the controller shows it, it decides nothing.
      ...(reason !== undefined ? { reason: reason as NonNullable<JobStateReport['reason']> } : {}),
      ...(detail !== undefined ? { detail } : {}),
      ...(progress !== undefined ? { progress: { bytes: progress.bytes, total: progress.total } } : {}),
      at,
    },
  };
}

/** The serial of `connector/v1/<serial>/job-state`; undefined for anything else. */
export function parseJobStateReportTopic(topic: string): string | undefined {
  const parts = topic.split('/');
  return parts.length === 4 && parts[0] === 'connector' && parts[1] === 'v1' && parts[3] === 'job-state' ? parts[2] : undefined;
}

/** Splits `connector/v1/<serial>/jobs/<jobId>[/state]`; undefined for anything else. */
export function parseJobTopic(topic: string): { serial: string; jobId: string; state: boolean } | undefined {
  const parts = topic.split('/');
  if (parts[0] !== 'connector' || parts[1] !== 'v1' || parts[3] !== 'jobs') return undefined;
  const serial = parts[2];
  const jobId = parts[4];
  if (serial === undefined || jobId === undefined) return undefined;
  if (parts.length === 5) return { serial, jobId, state: false };
  if (parts.length === 6 && parts[5] === 'state') return { serial, jobId, state: true };
  return undefined;
}
