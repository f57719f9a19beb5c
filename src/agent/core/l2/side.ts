// SPDX-License-Identifier: UNLICENSED
// The one word for where a frame was seen or goes, used by the ports, the policy, its tables, counters and
// the status document: the LAN (the TAP on the bridge) or the tunnel (the DC side).
export type FrameSide = 'lan' | 'tunnel';

export const otherSide = (s: FrameSide): FrameSide => (s === 'lan' ? 'tunnel' : 'lan');
