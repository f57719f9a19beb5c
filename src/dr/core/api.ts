// SPDX-License-Identifier: UNLICENSED
// The drill API's routes, pure: method, path and parsed body in, a status and a JSON body out, over the
// operations main.ts wires. The console uses it; the CLI does the same through the same operations.
//   GET  /v1/drills              every drill (effective state, time left)
//   GET  /v1/drills/:id          one drill
//   POST /v1/drills              start: {tenant, segment?, kind, vmIp?, ttlS?, allowOutbound?}
//   POST /v1/drills/:id/end      end
//   GET  /v1/drills/:id/report   the drill's (or failover's) report: { report, html } (needs the audit log)
//   GET  /v1/failovers           every failover (site-loss takeovers, `connector failover start`)
//   GET  /v1/failovers/:id       one failover
//   GET  /v1/failovers/:id/report its report, as for a drill
import { ConnectorError } from '../../shared/errors.js';
import type { JsonApiResponse } from '../../shared/net/json-api-server.js';
import type { DrillKind, DrillSpec } from './drill.js';

export interface DrillOps {
  list(): Promise<unknown[]>;
  get(id: string): Promise<unknown>;
  start(spec: DrillSpec): Promise<unknown>;
  end(id: string): Promise<unknown>;
  /** The report of a drill or failover, as `connector drill report` writes it: JSON and self-contained HTML. */
  report(id: string): Promise<{ report: unknown; html: string }>;
  failovers(): Promise<unknown[]>;
  failover(id: string): Promise<unknown>;
}

const KINDS: readonly DrillKind[] = ['in-place', 'sandbox'];

function specOf(body: unknown): DrillSpec | string {
  if (!body || typeof body !== 'object') return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  const known = ['tenant', 'segment', 'kind', 'vmIp', 'ttlS', 'allowOutbound'];
  const extra = Object.keys(b).find((k) => !known.includes(k));
  if (extra) return `unknown field "${extra}" (known: ${known.join(', ')})`;
  if (typeof b['tenant'] !== 'string') return 'tenant (string) is required';
  if (!KINDS.includes(b['kind'] as DrillKind)) return `kind must be one of ${KINDS.join(', ')}`;
  if (b['segment'] !== undefined && typeof b['segment'] !== 'string') return 'segment must be a string';
  if (b['vmIp'] !== undefined && typeof b['vmIp'] !== 'string') return 'vmIp must be a string';
  if (b['ttlS'] !== undefined && typeof b['ttlS'] !== 'number') return 'ttlS must be a number';
  if (b['allowOutbound'] !== undefined && typeof b['allowOutbound'] !== 'boolean') return 'allowOutbound must be a boolean';
  return {
    tenant: b['tenant'],
    kind: b['kind'] as DrillKind,
    segment: b['segment'] as string | undefined,
    vmIp: b['vmIp'] as string | undefined,
    ttlS: b['ttlS'] as number | undefined,
    allowOutbound: b['allowOutbound'] as boolean | undefined,
  };
}

export async function routeDrillApi(ops: DrillOps, method: string, path: string, body: unknown): Promise<JsonApiResponse> {
  try {
    const parts = path.split('?')[0]?.split('/').filter(Boolean) ?? [];
    if (parts[0] !== 'v1' || (parts[1] !== 'drills' && parts[1] !== 'failovers')) return { status: 404, body: { error: 'not-found' } };
    const id = parts[2];
    if (parts[1] === 'failovers') {
      // Failovers are started and ended with `connector failover`, a decision taken on the command line.
      if (method !== 'GET') return { status: 405, body: { error: 'method-not-allowed' } };
      if (parts.length === 2) return { status: 200, body: { failovers: await ops.failovers() } };
      if (id && parts.length === 3) return { status: 200, body: await ops.failover(id) };
      if (id && parts[3] === 'report' && parts.length === 4) {
        await ops.failover(id);
        return { status: 200, body: await ops.report(id) };
      }
      return { status: 404, body: { error: 'not-found' } };
    }
    if (method === 'GET' && parts.length === 2) return { status: 200, body: { drills: await ops.list() } };
    if (method === 'GET' && id && parts.length === 3) return { status: 200, body: await ops.get(id) };
    if (method === 'GET' && id && parts[3] === 'report' && parts.length === 4) return { status: 200, body: await ops.report(id) };
    if (method === 'POST' && parts.length === 2) {
      const spec = specOf(body);
      if (typeof spec === 'string') return { status: 400, body: { error: 'CK_ERR_USAGE', message: spec } };
      return { status: 201, body: await ops.start(spec) };
    }
    if (method === 'POST' && id && parts[3] === 'end' && parts.length === 4) return { status: 200, body: await ops.end(id) };
    return { status: 405, body: { error: 'method-not-allowed' } };
  } catch (e) {
    if (e instanceof ConnectorError) {
      const status = /^no (drill|failover)/.test(e.message) ? 404 : e.code === 'CK_ERR_DRILL' ? 409 : 400;
      return { status, body: { error: e.code, message: e.message } };
    }
    throw e;
  }
}
