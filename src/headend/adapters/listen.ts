// SPDX-License-Identifier: UNLICENSED
// Binds a TCP server (the tunnel listener, the metrics endpoint) or a UDP socket (VXLAN, datagrams),
// turning a bind failure into our error.
import type { Socket as UdpSocket } from 'node:dgram';
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

export function bindUdp(sock: UdpSocket, host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void =>
      reject(new ConnectorError('CK_ERR_IO', `cannot bind the ${what} socket to ${host}:${port}: ${e.message}`, { cause: e }));
    sock.once('error', onError);
    // exclusive: a headend worker binds its own socket (cluster would share one among all workers).
    sock.bind({ port, address: host, exclusive: true }, () => {
      sock.removeListener('error', onError);
      resolve();
    });
  });
}
