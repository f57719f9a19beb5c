// SPDX-License-Identifier: UNLICENSED
// The Prometheus endpoint: GET /metrics renders the headend's counters on each scrape.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/log.js';
import { listen } from './listen.js';

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function openMetricsServer(host: string, port: number, render: () => string, log: Logger): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(render());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found; try GET /metrics\n');
    }
  });
  const address = await listen(server, host, port, 'metrics');
  server.on('error', (e) => log.error('metrics listener error', { error: e.message }));
  return {
    address,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
