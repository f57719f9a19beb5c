// SPDX-License-Identifier: UNLICENSED
// The console's rollouts: read from the rollout controller's API (`connector ota controller`, src/ota) or,
// without one, from the state files of `connector ota rollout --state` (read-only). Starting, pausing,
// resuming and widening go to the controller, for provider admins only (a rollout reaches every tenant's
// units), each written to the operator log with the operator's name. An msp sees the rollouts that touch
// its units and only those units, and never the controller's problems or releases.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from '../../shared/registry/registry.js';
import type { Operator } from '../core/operators.js';
import { rolloutView, type RolloutView } from '../core/rollouts.js';
import { HttpError, readJson, sendJson } from './http-util.js';
import type { OperatorLog } from './operator-log.js';
import { serviceClient } from './service-client.js';

export interface RolloutRoutes {
  /** Whether the Rollouts page has anything to show, and whether it may steer. */
  features(): { rollouts: boolean; rolloutControl: boolean };
  /** Handles /api/rollouts... and /api/releases; false when the path is not one of them. */
  handle(req: IncomingMessage, res: ServerResponse, op: Operator, path: string, method: string): Promise<boolean>;
}

export function rolloutRoutes(o: {
  api: string | null;
  /** The state files (name and parsed JSON, or why not); null when no rollout directory is set. */
  files: () => { file: string; doc: unknown }[] | null;
  registry: () => Registry;
  operatorLog: OperatorLog;
  remoteOf: (req: IncomingMessage) => string;
}): RolloutRoutes {
  const call = serviceClient(o.api, 'rollout', 'rolloutApi');

  async function sources(): Promise<{ docs: { file: string; doc: unknown }[]; problems: string[] }> {
    if (o.api !== null) {
      const r = (await call('GET', '/v1/rollouts')) as { rollouts: { rolloutId?: unknown }[]; problems: string[] };
      return { docs: r.rollouts.map((doc) => ({ file: `${String(doc.rolloutId)}.json`, doc })), problems: r.problems };
    }
    const files = o.files();
    if (files === null) throw new HttpError(404, 'rollouts are not configured (set rolloutApi or rolloutDir in the console config)');
    return { docs: files, problems: [] };
  }

  async function list(op: Operator): Promise<{ rollouts: RolloutView[]; problems: string[] }> {
    const { docs, problems } = await sources();
    const reg = o.registry();
    const views: RolloutView[] = [];
    for (const { file, doc } of docs) {
      const v = typeof doc === 'string' ? `${file}: ${doc}` : rolloutView(doc, file, reg, op);
      if (typeof v === 'string') problems.push(v);
      // An msp is shown the rollouts that touch its units, and nothing of the others.
      else if (op.role !== 'msp' || v.units.length > 0) views.push(v);
    }
    views.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return { rollouts: views, problems: op.role === 'msp' ? [] : problems };
  }

  function mayControl(op: Operator): void {
    if (op.role !== 'admin')
      throw new HttpError(403, `operator ${op.name} (${op.role}) cannot steer rollouts: they reach every tenant's units`);
  }

  return {
    features: () => ({ rollouts: o.api !== null || o.files() !== null, rolloutControl: o.api !== null }),
    async handle(req, res, op, path, method) {
      if (path === '/api/releases' && method === 'GET') {
        if (op.role === 'msp') throw new HttpError(403, 'releases are for provider operators');
        sendJson(res, 200, await call('GET', '/v1/releases'));
        return true;
      }
      const m = /^\/api\/rollouts(?:\/([A-Za-z0-9._-]{1,64})\/(pause|resume|widen))?$/.exec(path);
      if (!m) return false;
      const [, id, action] = m;
      if (method === 'GET' && !id) {
        sendJson(res, 200, await list(op));
        return true;
      }
      if (method !== 'POST') throw new HttpError(405, `no ${method} ${path}`);
      mayControl(op);
      // The operator's name, not whatever the body says, is who did it.
      const body = { ...(await readJson(req)), by: op.name };
      const r = (await call('POST', id ? `/v1/rollouts/${encodeURIComponent(id)}/${action ?? ''}` : '/v1/rollouts', body)) as {
        rolloutId?: string;
        status?: string;
      };
      const { by: _by, ...detail } = body;
      o.operatorLog.append(
        {
          operator: op.name,
          action: `rollout-${action ?? 'start'}`,
          target: r.rolloutId ?? id ?? '',
          remote: o.remoteOf(req),
          detail: { ...detail, status: r.status },
        },
        new Date(),
      );
      sendJson(res, id ? 200 : 201, r);
      return true;
    },
  };
}
