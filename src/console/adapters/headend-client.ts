// SPDX-License-Identifier: UNLICENSED
// The headends' live sessions, polled from each headend's operations endpoint (GET /sessions). A headend
// that does not answer within the timeout contributes nothing and is reported as unreachable: the
// console shows what it knows rather than waiting.
import type { LiveSession } from '../core/fleet.js';

export interface HeadendPoll {
  sessions: LiveSession[];
  unreachable: { headend: string; error: string }[];
  at: number;
}

export async function pollHeadends(headends: readonly string[], timeoutMs: number): Promise<HeadendPoll> {
  const sessions: LiveSession[] = [];
  const unreachable: { headend: string; error: string }[] = [];
  await Promise.all(
    headends.map(async (h) => {
      try {
        const res = await fetch(new URL('/sessions', h), { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as { sessions?: Omit<LiveSession, 'headend'>[] };
        for (const s of body.sessions ?? []) sessions.push({ ...s, headend: h });
      } catch (e) {
        unreachable.push({ headend: h, error: (e as Error).message });
      }
    }),
  );
  return { sessions, unreachable, at: Date.now() };
}
