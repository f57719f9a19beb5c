// SPDX-License-Identifier: UNLICENSED
// One live session as `GET /sessions` on the metrics listener serves it (the console reads it).
export interface HeadendSessionInfo {
  id: string;
  serial: string;
  tenant: string;
  segment: string;
  vni: number;
  /** 0 for the untagged default session. */
  vlan: number;
  state: string;
  remote: string;
  site: string;
  agentVersion: string;
  /** Wall-clock ms when the session was admitted. */
  startedAtMs: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Where data toward the device leaves: datagrams or the TLS connection. */
  transport: 'datagram' | 'tls';
  /** Round-trip time of the headend's latest probe, ms (a ping to every session every 5 s); null until one. */
  rttMs: number | null;
  /** RFC 3550 jitter over those RTTs, ms; null until two. */
  jitterMs: number | null;
}
