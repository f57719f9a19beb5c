// SPDX-License-Identifier: UNLICENSED
// The drill API's HTTP listener: the shared JSON listener over core/api.ts's routes.
import type { Logger } from '../../shared/log.js';
import { serveJsonApi, type JsonApiServer } from '../../shared/net/json-api-server.js';
import { routeDrillApi, type DrillOps } from '../core/api.js';

export function serveDrillApi(o: { host: string; port: number; ops: DrillOps; log: Logger }): Promise<JsonApiServer> {
  return serveJsonApi({ host: o.host, port: o.port, log: o.log, what: 'drill', route: (m, p, b) => routeDrillApi(o.ops, m, p, b) });
}
