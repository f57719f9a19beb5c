// SPDX-License-Identifier: UNLICENSED
// The rollout controller's API routes, pure: method, path and parsed body in, a status and a JSON body
// out, over the operations the controller service wires (adapters/rollout-service.ts). The console uses it.
//   GET  /v1/releases                 the signed releases the controller can roll out
//   GET  /v1/rollouts                 every rollout's state (and files it could not read)
//   GET  /v1/rollouts/:id             one rollout's state
//   POST /v1/rollouts                 start: {release, cohort, failThreshold, maxParallel?, window?, rolloutId?, by?}
//   POST /v1/rollouts/:id/pause       {by?}
//   POST /v1/rollouts/:id/resume      {by?, acceptFailures?}
//   POST /v1/rollouts/:id/widen       {cohort, by?}
import { ConnectorError } from '../../shared/errors.js';
import type { JsonApiResponse } from '../../shared/net/json-api-server.js';
import { parseCohort, parseWindow, type CohortSpec, type MaintenanceWindow, type RolloutState } from './rollout-state.js';

export interface ReleaseInfo {
  /** The manifest's file name in the releases directory: what a start names. */
  name: string;
  version: string;
  manifestSha256: string;
  createdAt: string;
}

export interface StartRequest {
  release: string;
  cohort: CohortSpec;
  failThreshold: number;
  maxParallel: number;
  window?: MaintenanceWindow;
  rolloutId?: string;
  by: string;
}

export interface RolloutOps {
  releases(): Promise<ReleaseInfo[]>;
  list(): Promise<{ rollouts: RolloutState[]; problems: string[] }>;
  get(id: string): Promise<RolloutState>;
  start(r: StartRequest): Promise<RolloutState>;
  pause(id: string, by: string): Promise<RolloutState>;
  resume(id: string, by: string, acceptFailures: boolean): Promise<RolloutState>;
  widen(id: string, cohort: CohortSpec, by: string): Promise<RolloutState>;
}

type Body = Record<string, unknown>;

function fields(body: unknown, known: readonly string[]): Body {
  if (body === undefined) return {};
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw usage('body must be a JSON object');
  const extra = Object.keys(body).find((k) => !known.includes(k));
  if (extra) throw usage(`unknown field "${extra}" (known: ${known.join(', ')})`);
  return body as Body;
}

function usage(msg: string): ConnectorError {
  return new ConnectorError('CK_ERR_USAGE', msg);
}

function text(b: Body, key: string, required: true): string;
function text(b: Body, key: string, required: false): string | undefined;
function text(b: Body, key: string, required: boolean): string | undefined {
  const v = b[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw usage(`${key} (non-empty string) is required`);
  return v.trim();
}

function count(b: Body, key: string, fallback?: number): number {
  const v = b[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000) throw usage(`${key} must be an integer in 1..1000000`);
  return v;
}

const by = (b: Body): string => text(b, 'by', false) ?? 'api';

function startOf(body: unknown): StartRequest {
  const b = fields(body, ['release', 'cohort', 'failThreshold', 'maxParallel', 'window', 'rolloutId', 'by']);
  const window = text(b, 'window', false);
  const rolloutId = text(b, 'rolloutId', false);
  if (rolloutId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(rolloutId))
    throw usage('rolloutId: 1-64 letters, digits, dots, dashes or underscores');
  return {
    release: text(b, 'release', true),
    cohort: parseCohort(text(b, 'cohort', true)),
    failThreshold: count(b, 'failThreshold'),
    maxParallel: count(b, 'maxParallel', 10),
    ...(window !== undefined ? { window: parseWindow(window) } : {}),
    ...(rolloutId !== undefined ? { rolloutId } : {}),
    by: by(b),
  };
}

export async function routeRolloutApi(ops: RolloutOps, method: string, path: string, body: unknown): Promise<JsonApiResponse> {
  try {
    const parts = path.split('?')[0]?.split('/').filter(Boolean) ?? [];
    if (parts[0] !== 'v1') return { status: 404, body: { error: 'not-found' } };
    if (parts[1] === 'releases' && parts.length === 2 && method === 'GET') return { status: 200, body: { releases: await ops.releases() } };
    if (parts[1] !== 'rollouts') return { status: 404, body: { error: 'not-found' } };
    const id = parts[2] === undefined ? undefined : decodeURIComponent(parts[2]);
    const action = parts[3];
    if (method === 'GET' && parts.length === 2) return { status: 200, body: await ops.list() };
    if (method === 'GET' && id && parts.length === 3) return { status: 200, body: await ops.get(id) };
    if (method === 'POST' && parts.length === 2) return { status: 201, body: await ops.start(startOf(body)) };
    if (method === 'POST' && id && parts.length === 4) {
      if (action === 'pause') return { status: 200, body: await ops.pause(id, by(fields(body, ['by']))) };
      if (action === 'resume') {
        const b = fields(body, ['by', 'acceptFailures']);
        if (b['acceptFailures'] !== undefined && typeof b['acceptFailures'] !== 'boolean') throw usage('acceptFailures must be a boolean');
        return { status: 200, body: await ops.resume(id, by(b), b['acceptFailures'] === true) };
      }
      if (action === 'widen') {
        const b = fields(body, ['by', 'cohort']);
        return { status: 200, body: await ops.widen(id, parseCohort(text(b, 'cohort', true)), by(b)) };
      }
    }
    return { status: 405, body: { error: 'method-not-allowed', message: `no ${method} ${path}` } };
  } catch (e) {
    if (e instanceof ConnectorError) {
      const status = /^no (rollout|release) /.test(e.message) ? 404 : e.code === 'CK_ERR_OTA_STATE' ? 409 : 400;
      return { status, body: { error: e.code, message: e.message } };
    }
    throw e;
  }
}
