// SPDX-License-Identifier: UNLICENSED
// Binds a TCP server (the tunnel listener, the metrics endpoint), turning a bind failure into our error.
import type { AddressInfo, Server as NetServer } from 'node:net';
import { ConnectorError, errorMessage } from '../../shared/errors.js';

export function listen(server: NetServer, host: string, port: number, what: string, backlog = 511): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new ConnectorError('CK_ERR_IO', `cannot listen for ${what} on ${host}:${port}: ${errorMessage(e)}`, { cause: e })),
    );
    server.listen({ port, host, backlog }, () => {
      server.removeAllListeners('error');
      resolve(server.address() as AddressInfo);
    });
  });
}
