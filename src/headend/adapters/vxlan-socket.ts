// SPDX-License-Identifier: UNLICENSED
// The headend's VXLAN side: one UDP socket bound to vxlan.localAddress:port; ingress hands each
// datagram's VNI and frame straight to the switch. A datagram that is not VXLAN is counted, never thrown.
// With the addon's batched socket (shared/native/udp-endpoint.ts) a read batch is one JS call and the
// packets one task sends leave together, equal-sized runs to one VTEP as one UDP GSO send; with node's
// dgram, egress goes through the VTEP sender (UDP GSO runs of full-size frames on a second socket).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6, type AddressInfo } from 'node:net';
import { bindUdp } from './listen.js';
import type { Logger } from '../../shared/log.js';
import { readVxlanVni, VXLAN_HEADER_LEN } from '../../shared/l2/vxlan.js';
import type { VtepPort } from '../core/forwarder.js';
import { createVtepSender, type VtepSender } from './vtep-sender.js';
import { nativeUdp, openUdpEndpoint } from '../../shared/native/udp-endpoint.js';
import { writeVxlanHeader } from '../../shared/l2/vxlan.js';

export interface VxlanIngress {
  fromVtep(address: string, vni: number, frame: Buffer): void;
  /** Frames read together from one VTEP for one VNI, in order; the buffers are reused once it returns. */
  fromVtepBatch?(address: string, vni: number, frames: readonly Buffer[]): void;
}

export interface VxlanSocket extends VtepPort {
  readonly address: AddressInfo;
  /** Starts delivering datagrams to `ingress`; malformed ones go to `onDrop` by reason. */
  receiveInto(ingress: VxlanIngress, onDrop: (reason: string) => void): void;
  close(): Promise<void>;
}

export interface VxlanSocketOptions {
  localAddress: string;
  port: number;
  /** Destination UDP port of the VTEPs (4789). */
  vtepPort: number;
  /** Sends leave the event loop for a thread of the socket's own (the addon's socket only). */
  sendThread?: boolean;
  log: Logger;
}

/** Room for a burst from every VTEP while the loop is busy. */
const VXLAN_SOCKET_BUFFER = 4 * 1024 * 1024;

async function openBatched(o: VxlanSocketOptions): Promise<VxlanSocket | null> {
  // Only the addon's socket: with node's dgram the VTEP sender below does the GSO runs.
  if (nativeUdp() === null) return null;
  let deliver: ((msg: Buffer, address: string) => void) | null = null;
  let batchEnd: (() => void) | null = null;
  const ep = await openUdpEndpoint({
    host: o.localAddress,
    port: o.port,
    what: 'VXLAN',
    rcvbuf: VXLAN_SOCKET_BUFFER,
    sndbuf: VXLAN_SOCKET_BUFFER,
    pmtuProbe: false,
    ...(o.sendThread === true ? { sendThread: true } : {}),
    onDatagram: (msg, address) => deliver?.(msg, address),
    onBatchEnd: () => batchEnd?.(),
    onError: (e) => o.log.error('VXLAN socket error', { error: e.message }),
  });
  const v6 = isIPv6(o.localAddress);
  return {
    address: { address: o.localAddress, family: v6 ? 'IPv6' : 'IPv4', port: ep.port },
    send(address, vni, frame) {
      const pkt = ep.alloc(VXLAN_HEADER_LEN + frame.length);
      writeVxlanHeader(pkt, 0, vni);
      frame.copy(pkt, VXLAN_HEADER_LEN);
      ep.send(pkt, address, o.vtepPort);
    },
    receiveInto(ingress, onDrop) {
      const batched = ingress.fromVtepBatch?.bind(ingress);
      if (!batched) {
        deliver = (msg, address) => {
          const vni = readVxlanVni(msg, 0);
          if (typeof vni === 'string') onDrop(vni);
          else ingress.fromVtep(address, vni, msg.subarray(VXLAN_HEADER_LEN));
        };
        return;
      }
      // A read batch (with GRO, runs of a VTEP's datagrams) is switched at its end, in runs of one VTEP
      // and VNI: the frames are views of the read buffer, valid until the batch callback returns.
      const run: Buffer[] = [];
      let runAddress = '';
      let runVni = -1;
      const flush = (): void => {
        if (run.length === 0) return;
        try {
          batched(runAddress, runVni, run);
        } finally {
          run.length = 0;
        }
      };
      deliver = (msg, address) => {
        const vni = readVxlanVni(msg, 0);
        if (typeof vni === 'string') {
          onDrop(vni);
          return;
        }
        if (vni !== runVni || address !== runAddress) {
          flush();
          runAddress = address;
          runVni = vni;
        }
        run.push(msg.subarray(VXLAN_HEADER_LEN));
      };
      batchEnd = flush;
    },
    close: () => ep.close(),
  };
}

export async function openVxlanSocket(o: VxlanSocketOptions): Promise<VxlanSocket> {
  const batched = await openBatched(o);
  if (batched) return batched;
  const { log } = o;
  const udp: UdpSocket = createSocket({ type: isIPv6(o.localAddress) ? 'udp6' : 'udp4' });
  await bindUdp(udp, o.localAddress, o.port, 'VXLAN');
  udp.on('error', (e) => log.error('VXLAN socket error', { error: e.message }));
  const sender: VtepSender = await createVtepSender({
    udp,
    localAddress: o.localAddress,
    port: o.vtepPort,
    onGsoOff: (reason) =>
      log.warn('VXLAN egress: UDP GSO switched off, one send per frame from now on', { reason, fix: 'check the VTEP path MTU (>= 1550)' }),
  });
  if (!sender.gso) log.info('VXLAN egress without UDP GSO: one send per frame', { reason: sender.gsoReason });
  return {
    address: udp.address() as AddressInfo,
    // The sender's own function: the switch calls it per frame with nothing in between.
    send: sender.send,
    receiveInto(ingress, onDrop) {
      udp.on('message', (msg, rinfo) => {
        const vni = readVxlanVni(msg, 0);
        if (typeof vni === 'string') {
          onDrop(vni);
          return;
        }
        ingress.fromVtep(rinfo.address, vni, msg.subarray(VXLAN_HEADER_LEN));
      });
    },
    async close() {
      await sender.close();
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}
