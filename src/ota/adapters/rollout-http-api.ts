// SPDX-License-Identifier: UNLICENSED
// The rollout controller's HTTP listener: the shared JSON listener over core/rollout-api.ts's routes.
import type { Logger } from '../../shared/log.js';
import { serveJsonApi, type JsonApiServer } from '../../shared/net/json-api-server.js';
import { routeRolloutApi, type RolloutOps } from '../core/rollout-api.js';

export function serveRolloutApi(o: { host: string; port: number; ops: RolloutOps; log: Logger }): Promise<JsonApiServer> {
  return serveJsonApi({ host: o.host, port: o.port, log: o.log, what: 'rollout', route: (m, p, b) => routeRolloutApi(o.ops, m, p, b) });
}
