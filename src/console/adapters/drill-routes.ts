// SPDX-License-Identifier: UNLICENSED
// The console's drills and failovers: a thin door to the drill service's API (`connector drill serve`,
// src/dr), with the console's own rules on top: an operator sees the drills and failovers of the tenants it
// may see, starts and ends drills only for tenants it may change, and every start and end goes to the
// operator log with its name. Failovers are only shown here: they are declared on the command line.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { canChange, canSee, type Operator } from '../core/operators.js';
import { HttpError, readJson, SECURITY_HEADERS, sendJson } from './http-util.js';
import type { OperatorLog } from './operator-log.js';
import { serviceClient } from './service-client.js';

interface DrillView {
  id: string;
  tenant: string;
  [k: string]: unknown;
}

export interface DrillRoutes {
  /** Handles /api/drills... and /api/failovers...; false when the path is not one of them. */
  handle(req: IncomingMessage, res: ServerResponse, op: Operator, path: string, method: string): Promise<boolean>;
}

export function drillRoutes(api: string | null, operatorLog: OperatorLog, remoteOf: (req: IncomingMessage) => string): DrillRoutes {
  const call = serviceClient(api, 'drill', 'drillApi');

  /** `kind` is drills or failovers: they share the service, the id space and the report. */
  const one = async (kind: string, id: string, op: Operator): Promise<DrillView> => {
    const what = kind === 'drills' ? 'drill' : 'failover';
    const d = (await call('GET', `/v1/${kind}/${encodeURIComponent(id)}`).catch((e: unknown) => {
      if (e instanceof HttpError && e.status === 404) throw new HttpError(404, `no ${what} ${id}`);
      throw e;
    })) as DrillView;
    // Another tenant's drill or failover answers as one that does not exist.
    if (!canSee(op, d.tenant)) throw new HttpError(404, `no ${what} ${id}`);
    return d;
  };

  return {
    async handle(req, res, op, path, method) {
      const m = /^\/api\/(drills|failovers)(?:\/([0-9a-z-]{1,64})(\/end|\/report)?)?$/.exec(path);
      if (!m) return false;
      const [, kind = 'drills', id, sub] = m;
      const end = sub === '/end';
      if (method === 'GET' && id && sub === '/report') {
        await one(kind, id, op);
        const { html } = (await call('GET', `/v1/${kind}/${encodeURIComponent(id)}/report`)) as { html: string };
        // The report is self-contained: its own inline style, no scripts, nothing fetched.
        const csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-security-policy': csp,
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(html);
        return true;
      }
      if (method === 'GET' && !id) {
        const list = ((await call('GET', `/v1/${kind}`)) as Record<string, DrillView[]>)[kind] ?? [];
        sendJson(res, 200, { [kind]: list.filter((d) => canSee(op, d.tenant)) });
      } else if (method === 'GET' && id && !sub) {
        sendJson(res, 200, await one(kind, id, op));
      } else if (kind === 'failovers') {
        throw new HttpError(405, 'failovers are started and ended with `connector failover start|end`');
      } else if (method === 'POST' && !id) {
        const body = await readJson(req);
        const tenant = typeof body['tenant'] === 'string' ? body['tenant'] : '';
        if (!canChange(op, tenant))
          throw new HttpError(403, `operator ${op.name} cannot run drills for tenant ${tenant || '(none given)'}`);
        const d = (await call('POST', '/v1/drills', body)) as DrillView;
        operatorLog.append(
          { operator: op.name, action: 'drill-start', target: d.id, remote: remoteOf(req), detail: { tenant, kind: body['kind'] } },
          new Date(),
        );
        sendJson(res, 201, d);
      } else if (method === 'POST' && id && end) {
        const d = await one(kind, id, op);
        if (!canChange(op, d.tenant)) throw new HttpError(403, `operator ${op.name} cannot end drills of tenant ${d.tenant}`);
        const ended = await call('POST', `/v1/drills/${encodeURIComponent(id)}/end`);
        operatorLog.append({ operator: op.name, action: 'drill-end', target: id, remote: remoteOf(req) }, new Date());
        sendJson(res, 200, ended);
      } else {
        throw new HttpError(405, `no ${method} ${path}`);
      }
      return true;
    },
  };
}
