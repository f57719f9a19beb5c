// SPDX-License-Identifier: UNLICENSED
// The unit's health as it leaves the device for the operators' console (retained on the OTA channel):
// the status socket's document cut to what an operator reads remotely and bounded in size, so a LAN with
// thousands of MACs never makes a message the broker refuses. Pure: the status document and time in.
import type { StatusDoc } from '../status-format.js';

/** Rows kept of the MAC and neighbour tables; the totals say how many there were. */
export const HEALTH_MAX_ROWS = 200;
/** Well under the broker's packet limit (128 KiB). */
export const HEALTH_MAX_BYTES = 64 * 1024;

export interface HealthDoc {
  v: 1;
  at: string;
  version: string;
  uptimeS: number;
  phase: string;
  reason?: string;
  tunnel?: Record<string, unknown>;
  counters?: Record<string, unknown>;
  macTable: readonly Record<string, unknown>[];
  macTotal: number;
  neighbours: readonly Record<string, unknown>[];
  neighbourTotal: number;
  alarms: readonly Record<string, unknown>[];
  /** True when rows were left out to stay within HEALTH_MAX_BYTES. */
  truncated: boolean;
}

export function healthDoc(s: StatusDoc, at: Date): HealthDoc {
  const macs = s.macTable ?? [];
  const neighbours = s.neighbours ?? [];
  let rows = HEALTH_MAX_ROWS;
  for (;;) {
    const doc: HealthDoc = {
      v: 1,
      at: at.toISOString(),
      version: s.version,
      uptimeS: s.uptimeS,
      phase: s.phase,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.tunnel ? { tunnel: s.tunnel } : {}),
      ...(s.counters ? { counters: s.counters } : {}),
      macTable: macs.slice(0, rows),
      macTotal: macs.length,
      neighbours: neighbours.slice(0, rows),
      neighbourTotal: neighbours.length,
      alarms: (s.alarms?.active ?? []).slice(0, HEALTH_MAX_ROWS),
      truncated: rows < Math.max(macs.length, neighbours.length),
    };
    // Rows are small; halving converges in a few rounds even for unusually long entries.
    if (Buffer.byteLength(JSON.stringify(doc)) <= HEALTH_MAX_BYTES || rows === 0) return doc;
    rows = Math.floor(rows / 2);
  }
}
