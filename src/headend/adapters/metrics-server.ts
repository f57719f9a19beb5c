// SPDX-License-Identifier: UNLICENSED
// The operations endpoint: GET /metrics renders the headend's counters on each scrape (Prometheus text);
// GET /sessions lists the live sessions as JSON (the console's view of the headend). Both belong on the
// provider's management network, never on the internet-facing address.
import { createServer, type ServerResponse } from 'node:http';
import { errorMessage } from '../../shared/errors.js';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/log.js';
import { guardServer } from '../../shared/net/service-guard.js';
import { listen } from './listen.js';

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

async function answer(res: ServerResponse, type: string, body: () => string | Promise<string>): Promise<void> {
  try {
    const text = await body();
    res.writeHead(200, { 'content-type': type });
    res.end(text);
  } catch (e) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end(`not available: ${errorMessage(e)}\n`);
  }
}

export async function openMetricsServer(
  host: string,
  port: number,
  render: (detail: 'tenant' | 'segment') => string | Promise<string>,
  log: Logger,
  sessions: () => unknown = () => [],
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      const detail = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('detail') === 'segment' ? 'segment' : 'tenant';
      // Several workers answer through the primary: the text may arrive later.
      void answer(res, 'text/plain; version=0.0.4; charset=utf-8', () => render(detail));
    } else if (req.method === 'GET' && path === '/sessions') {
      void answer(res, 'application/json', async () => JSON.stringify({ sessions: await sessions() }));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found; try GET /metrics or GET /sessions\n');
    }
  });
  guardServer(server, { name: 'metrics', log, maxConnections: 256, maxPerSource: 16 });
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
