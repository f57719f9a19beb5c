// SPDX-License-Identifier: UNLICENSED
// The refusals of a guarded service as Prometheus metrics, on a listener of their own for the provider's
// management network (never on the service's internet-facing address): EST and the OTA artifact server.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { guardServer, type ServiceGuard } from './service-guard.js';

const REASONS = [
  ['global-cap', 'refusedGlobal'],
  ['per-source-cap', 'refusedPerSource'],
  ['bad-request', 'badRequests'],
  ['tls-failure', 'tlsFailures'],
  ['idle', 'idleClosed'],
] as const;

/** Prometheus text for the guards of one process, one `service` label each. */
export function renderGuardMetrics(services: readonly { name: string; guard: ServiceGuard }[]): string {
  const out = [
    '# HELP connector_service_connections_open Connections open now.',
    '# TYPE connector_service_connections_open gauge',
    ...services.map((s) => `connector_service_connections_open{service="${s.name}"} ${s.guard.open()}`),
    '# HELP connector_service_refusals_total Connections and requests refused or closed by the guard, by reason.',
    '# TYPE connector_service_refusals_total counter',
  ];
  for (const s of services) {
    for (const [reason, key] of REASONS)
      out.push(`connector_service_refusals_total{service="${s.name}",reason="${reason}"} ${s.guard.counters[key]}`);
  }
  return out.join('\n') + '\n';
}

export interface GuardMetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** GET /metrics on host:port (port 0: any); everything else 404. */
export async function serveGuardMetrics(o: {
  host: string;
  port: number;
  services: readonly { name: string; guard: ServiceGuard }[];
  log: Logger;
}): Promise<GuardMetricsServer> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(renderGuardMetrics(o.services));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found; try GET /metrics\n');
    }
  });
  guardServer(server, { name: 'metrics', log: o.log, maxConnections: 256, maxPerSource: 16 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => o.log.error('metrics listener error', { error: e.message }));
  return {
    address: server.address() as AddressInfo,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
