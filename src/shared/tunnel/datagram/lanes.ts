// SPDX-License-Identifier: UNLICENSED
// Lanes of a datagram channel (docs/datagram.md, "Lanes"): a session's further peer ids, each with its own
// keys (the exporter's context names the peer id), replay window and path monitor, so that one end can
// seal and open each lane on a core of its own. The agent asks with `dg-lanes:<n>` in its hello (n counts
// the first peer id too); the headend answers `dg-lane-ids:<id>,<id>...` beside its `datagram:` offer.
// An end that does not know the words ignores them: one lane, as before. Each end sends every frame on
// the further lane its inner flow hashes to, so one flow's frames never race each other over two lanes;
// the first peer id keeps the path probes and carries a flow only while its lane's path is down (the
// agent runs the first lane on its event loop, which has the TAP and the policy to run besides).
import { flowBucket } from '../flow-hash.js';

export const LANES_CAPABILITY = 'dg-lanes';
export const LANE_IDS_CAPABILITY = 'dg-lane-ids';
/** The most lanes a session may have, its first peer id included. */
export const MAX_LANES = 8;
const BUCKETS = 1024;
// Not the egress queue's seed: a lane's flows are not the same set as a queue bucket's.
const SEED = 0x4c414e45;

/** The agent's hello word asking for `n` lanes in all (2..MAX_LANES); null for one. */
export function laneAsk(n: number): string | null {
  return Number.isInteger(n) && n >= 2 && n <= MAX_LANES ? `${LANES_CAPABILITY}:${n}` : null;
}

/** How many lanes a hello asks for, its first peer id included: 1 without a valid `dg-lanes:<n>`. */
export function laneCount(capabilities: readonly string[]): number {
  for (const c of capabilities) {
    const m = /^dg-lanes:(\d{1,2})$/.exec(c);
    if (m) return Math.max(1, Math.min(MAX_LANES, Number(m[1])));
  }
  return 1;
}

/** The headend's word naming the further lanes' peer ids. */
export function laneOffer(ids: readonly number[]): string {
  return `${LANE_IDS_CAPABILITY}:${ids.join(',')}`;
}

/** The further lanes' peer ids a hello-ack offers; [] when there are none or the word is malformed. */
export function parseLaneOffer(capabilities: readonly string[]): number[] {
  for (const c of capabilities) {
    const m = /^dg-lane-ids:(\d{1,8}(?:,\d{1,8}){0,6})$/.exec(c);
    if (!m?.[1]) continue;
    const ids = m[1].split(',').map(Number);
    if (ids.every((id) => id >= 1 && id < 0xffffff) && new Set(ids).size === ids.length) return ids;
  }
  return [];
}

/**
 * The further lane `frame`'s inner flow takes (undefined without lanes): every frame of one flow gets the
 * same answer while the lane count stays the same.
 */
export function pickLane<T>(frame: Uint8Array, lanes: readonly T[]): T | undefined {
  return lanes.length === 0 ? undefined : lanes[flowBucket(frame, BUCKETS, SEED) % lanes.length];
}
