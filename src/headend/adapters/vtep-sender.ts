// SPDX-License-Identifier: UNLICENSED
// VXLAN egress toward the VTEPs. One sendmsg per frame is most of the headend's cost at line rate, so
// runs of full-size frames (1514 bytes: what a bulk TCP flow sends) to the same VTEP in one event-loop
// turn leave as ONE send on a second socket with UDP GSO (UDP_SEGMENT = one VXLAN packet): the kernel
// cuts it into ordinary VXLAN datagrams, byte-identical to sending them one by one, after a single trip
// through the socket and IP layers. Any other frame is sent alone on the main socket, after the pending
// run to the same VTEP, so frames toward one VTEP keep their order. Without the addon or without kernel
// support (Linux < 4.18), every frame is sent alone, as before.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { VXLAN_HEADER_LEN, writeVxlanHeader } from '../../shared/l2/vxlan.js';
import { tuneSocket } from '../../shared/native/socket-options.js';

/** A full-size untagged Ethernet frame (no FCS) inside its VXLAN header. */
const SEGMENT = VXLAN_HEADER_LEN + 1514;
/** 42 segments keep a run under the 64 KiB a single UDP send may carry. */
const MAX_SEGMENTS = 42;

export interface VtepSenderStats {
  /** Frames sent alone, frames sent inside GSO runs, and the GSO sends that carried them. */
  single: number;
  batched: number;
  gsoSends: number;
  /** GSO sends the kernel refused; their frames were re-sent one by one and GSO was switched off. */
  gsoFailures: number;
}

export interface VtepSender {
  send(address: string, vni: number, frame: Buffer): void;
  /** Sends a pending run now (the sender also does this at the end of the current JS turn). */
  flush(): void;
  readonly gso: boolean;
  /** Why GSO is off, when it is. */
  readonly gsoReason: string | undefined;
  readonly stats: Readonly<VtepSenderStats>;
  close(): Promise<void>;
}

export interface VtepSenderOptions {
  /** The bound VXLAN socket (its source port 4789 is kept for single frames). */
  udp: UdpSocket;
  localAddress: string;
  port: number;
  /** Try UDP GSO; default true. */
  gso?: boolean;
  /** Told once when GSO is switched off after a failed send (for a log line). */
  onGsoOff?: (reason: string) => void;
}

export async function createVtepSender(o: VtepSenderOptions): Promise<VtepSender> {
  const stats: VtepSenderStats = { single: 0, batched: 0, gsoSends: 0, gsoFailures: 0 };
  let gsoSock: UdpSocket | null = null;
  let gsoReason: string | undefined;
  if (o.gso !== false) {
    const s = createSocket({ type: isIPv6(o.localAddress) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, o.localAddress, () => {
        s.removeListener('error', reject);
        resolve();
      });
    });
    const t = tuneSocket(s, { udpSegment: SEGMENT });
    if (t.ok && t.applied.udpSegment === SEGMENT) {
      gsoSock = s;
      gsoSock.on('error', () => {
        // send errors arrive through the send callbacks below
      });
    } else {
      gsoReason = t.ok ? 'UDP_SEGMENT not applied' : t.reason;
      s.close();
    }
  }

  // Run buffers come back once their send completed (the kernel has the bytes): no 64 KiB allocation
  // per run, which showed as garbage-collector time in the profile.
  const pool: Buffer[] = [];
  const release = (b: Buffer): void => {
    if (pool.length < 8) pool.push(b);
  };
  let run: Buffer | null = null;
  let runAddr = '';
  let runCount = 0;
  let flushQueued = false;

  const disableGso = (err: Error): void => {
    if (!gsoSock) return;
    const s = gsoSock;
    gsoSock = null;
    gsoReason = `UDP GSO send failed: ${err.message}`;
    o.onGsoOff?.(gsoReason);
    s.close();
  };

  const sendOne = (address: string, vni: number, frame: Buffer): void => {
    const pkt = Buffer.allocUnsafe(VXLAN_HEADER_LEN + frame.length);
    writeVxlanHeader(pkt, 0, vni);
    frame.copy(pkt, VXLAN_HEADER_LEN);
    o.udp.send(pkt, o.port, address);
    stats.single++;
  };

  const flush = (): void => {
    flushQueued = false;
    if (!run || runCount === 0) return;
    const buf = run;
    const count = runCount;
    const addr = runAddr;
    if (count === 1 || !gsoSock) {
      o.udp.send(buf, 0, count * SEGMENT, o.port, addr, () => release(buf));
      stats.single += count;
    } else {
      // The kernel refuses a GSO send whose segments exceed the path MTU (EINVAL) or that the device
      // cannot segment (EIO). Such a path gets what it got before GSO existed: one datagram per frame
      // (which IP may fragment), for this run and from now on. The resent frames may trail frames sent
      // since, once.
      gsoSock.send(buf, 0, count * SEGMENT, o.port, addr, (err) => {
        if (!err) {
          release(buf);
          return;
        }
        stats.gsoFailures++;
        disableGso(err);
        for (let i = 0; i < count; i++) o.udp.send(buf.subarray(i * SEGMENT, (i + 1) * SEGMENT), o.port, addr);
        stats.single += count;
        stats.batched -= count;
      });
      stats.batched += count;
      stats.gsoSends++;
    }
    run = null;
    runCount = 0;
  };

  return {
    get gso() {
      return gsoSock !== null;
    },
    get gsoReason() {
      return gsoReason;
    },
    stats,
    flush,
    send(address, vni, frame) {
      if (!gsoSock || VXLAN_HEADER_LEN + frame.length !== SEGMENT) {
        if (run && runAddr === address) flush();
        sendOne(address, vni, frame);
        return;
      }
      if (run && runAddr !== address) flush();
      if (!run) {
        run = pool.pop() ?? Buffer.allocUnsafe(SEGMENT * MAX_SEGMENTS);
        runAddr = address;
      }
      const off = runCount * SEGMENT;
      writeVxlanHeader(run, off, vni);
      frame.copy(run, off + VXLAN_HEADER_LEN);
      runCount++;
      if (runCount === MAX_SEGMENTS) flush();
      else if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(flush);
      }
    },
    async close() {
      flush();
      const s = gsoSock;
      gsoSock = null;
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
