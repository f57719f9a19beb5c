// SPDX-License-Identifier: UNLICENSED
// What the agent's core needs from the outside world, nothing more: main.ts wires the real adapters,
// tests the in-memory ones (test/helpers/ports.ts). Time is the shared Clock / Scheduler (src/shared/ports.ts).
export type { FrameSide } from './l2/side.js';
export type { OwnAddresses } from './own-addresses.js';
import type { InetSum, Offload } from '../../shared/l2/tso-segment.js';

/** The TAP, or an in-memory stand-in in tests. */
export interface FrameDevice {
  readonly maxBatch: number;
  /**
   * Up to maxBatch frames per wake-up; the buffers are reused once the handler returns. A device with
   * `offload` also passes each frame's virtio_net_hdr (a TCP super-frame, or a partial checksum).
   */
  onFrames(handler: (frames: readonly Buffer[], vnetHdrs?: readonly Buffer[]) => void): void;
  /** Returns how many frames were accepted; the caller counts the rest as drops. */
  writeFrames(frames: readonly Buffer[]): number;
  /**
   * Stops (true) or restarts (false) reading: what comes meanwhile waits in the kernel's queue in front
   * of the device (a TAP's qdisc), not in one of the agent's. Absent where the device cannot.
   */
  pause?(paused: boolean): void;
  /** Super-frames (a TAP opened with IFF_VNET_HDR); absent on a device without them. */
  readonly offload?: OffloadDevice;
  /**
   * The device's own counters for status (a TAP's frames read and written, and the writes its write
   * thread could not make, which writeFrames had already accepted).
   */
  readonly stats?: object;
  close(): Promise<void>;
}

export interface OffloadDevice {
  /** On: the kernel hands over TCP super-frames and partial checksums; off: it segments and sums first. */
  set(on: boolean): void;
  /** Writes a super-frame with its (validated) virtio_net_hdr; the kernel segments it toward the LAN. */
  write(vnetHdr: Buffer, frame: Buffer): boolean;
  /** The ones'-complement sum in C (tcp-coalesce.ts's checksum check), when the addon has it. */
  readonly inetSum?: InetSum;
}

export type TunnelState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

export interface TunnelLink {
  readonly state: TunnelState;
  start(): void;
  /** Copies the frames into its bounded queue; returns how many were queued (the rest are counted drops). */
  sendFrames(frames: readonly Buffer[]): number;
  /** One batch per read; the buffers stay valid during the call. */
  onFrames(handler: (frames: readonly Buffer[]) => void): void;
  /**
   * A super-frame, taken whole: one OFFLOAD record on TLS, or one datagram per segment (cut by `parsed`,
   * the caller's validation). False when the session up takes no super-frames now.
   */
  sendOffload?(vnetHdr: Buffer, frame: Buffer, parsed?: Offload): boolean;
  /** True while the session up takes super-frames: `offload` negotiated (v2) on TLS, or a channel that cuts them into datagrams. */
  offloadUp?(): boolean;
  /** Received OFFLOAD records: the virtio_net_hdr (unvalidated) and the super-frame. */
  onOffload?(handler: (vnetHdr: Buffer, frame: Buffer) => void): void;
  /** offloadUp() may have changed without a state change: this side's data moved to or from datagrams. */
  onOffloadChange?(handler: () => void): void;
  /**
   * The tunnel's own queue toward the headend is full (true) or has room again (false): the forwarder
   * stops reading the LAN meanwhile, so that what comes waits in the kernel's queue instead.
   */
  onBackpressure?(handler: (full: boolean) => void): void;
  onStateChange(handler: (state: TunnelState, info: { headend?: string; reason?: string }) => void): void;
  status(): Record<string, unknown>;
  /** What the headend granted in its hello-ack (e.g. `dhcp-from-dc`); empty while not up. */
  peerCapabilities(): readonly string[];
  close(): Promise<void>;
}

/** The device's TLS identity, PEM: key, certificate chain, and the DC CA the headend must chain to. */
export interface TunnelIdentity {
  key: string;
  cert: string;
  ca: string;
}

/** Where the operational identity comes from: files, or first-boot enrollment. */
export interface IdentitySource {
  /** Resolves once a usable identity exists; reports progress through `status()` meanwhile. */
  ready(): Promise<void>;
  /** The current identity; called per tunnel connection so a renewed certificate is picked up. */
  current(): Promise<TunnelIdentity>;
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

/** What the OTA channel gets from the agent once the tunnel runs. */
export interface OtaContext {
  identity: () => Promise<TunnelIdentity>;
  /** The health check of a freshly installed version. */
  tunnelUp: () => boolean;
  /** The unit's health for the operators' console (tunnel, counters, tables, alarms). */
  health: () => unknown;
}

export interface OtaChannel {
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

/** The local status endpoint. */
export interface StatusServer {
  close(): Promise<void>;
}
