// SPDX-License-Identifier: UNLICENSED
// WAN profiles for the lab and the bench, as plain data. The figures people quote for a path (and the
// issue's profiles) are round-trip: "12 ms, ±1 ms, 1 Gbit/s, 0 loss" is what ping and iperf3 see. The
// delay line (native/wan/wan.c) works per direction, so a profile is split here: half the RTT and half
// the jitter each way (two uniform ±J/2 draws add up to at most ±J on the round trip), the rate on each
// direction (a symmetric link), and the loss drawn independently on each direction, as netem on both
// ends would (a ping then sees about twice the loss figure; a bulk TCP flow sees it on its data).
import { UsageError } from '../../shared/errors.js';

export interface WanProfile {
  /** Round-trip delay added by the path, ms. */
  rttMs: number;
  /** Round-trip jitter, ms (uniform ±jitterMs, never reordering). */
  jitterMs: number;
  /** Bottleneck rate, bit/s, each direction; 0 = no bottleneck. */
  rateBps: number;
  /** Random loss probability per wire frame, each direction (0..1). */
  loss: number;
}

/** The seed's uplink: 12 ms RTT, ±1 ms, 1 Gbit/s, no loss. */
export const DEFAULT_WAN: WanProfile = Object.freeze({ rttMs: 12, jitterMs: 1, rateBps: 1e9, loss: 0 });

/** The issue's WAN profiles (RTT, loss, rate) for the bench. */
export const WAN_PROFILES: Readonly<Record<string, WanProfile>> = Object.freeze({
  metro: { rttMs: 12, jitterMs: 0, rateBps: 1e9, loss: 0 },
  regional: { rttMs: 30, jitterMs: 0, rateBps: 500e6, loss: 0.001 },
  continental: { rttMs: 80, jitterMs: 0, rateBps: 200e6, loss: 0.005 },
  lossy: { rttMs: 50, jitterMs: 0, rateBps: 100e6, loss: 0.01 },
});

const SPEC_HELP = 'want RTT,JITTER,RATE,LOSS such as 12ms,1ms,1g,0 or 30ms,0,500m,0.1% (or a profile name, or "default")';

function bad(spec: string, why: string): UsageError {
  return new UsageError(`--wan ${spec}: ${why}; ${SPEC_HELP}`);
}

function ms(spec: string, s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms)?$/.exec(s.trim());
  if (!m) throw bad(spec, `bad ${what} '${s}'`);
  return Number(m[1]);
}

function rate(spec: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)(?:bit\/s|bps)?$/i.exec(s.trim());
  if (!m) throw bad(spec, `bad rate '${s}'`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

function loss(spec: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(s.trim());
  if (!m) throw bad(spec, `bad loss '${s}'`);
  const v = m[2] ? Number(m[1]) / 100 : Number(m[1]);
  if (v > 1) throw bad(spec, `loss '${s}' above 1 (write 1% for one per cent)`);
  return v;
}

/** Parses `--wan`: a profile name, "default", or RTT,JITTER,RATE,LOSS (missing trailing fields: the default's). */
export function parseWanSpec(spec: string): WanProfile {
  const s = spec.trim();
  if (s === '' || s === 'default') return { ...DEFAULT_WAN };
  const named = WAN_PROFILES[s];
  if (named) return { ...named };
  const f = s.split(',');
  if (f.length > 4) throw bad(spec, 'too many fields');
  return {
    rttMs: ms(spec, f[0] ?? '', 'RTT'),
    jitterMs: f[1] === undefined ? DEFAULT_WAN.jitterMs : ms(spec, f[1], 'jitter'),
    rateBps: f[2] === undefined ? DEFAULT_WAN.rateBps : rate(spec, f[2]),
    loss: f[3] === undefined ? DEFAULT_WAN.loss : loss(spec, f[3]),
  };
}

/** The delay line's arguments for a profile between interfaces a and b (one-way values per direction). */
export function wanArgs(p: WanProfile, ifA: string, ifB: string, statsPath: string, seed?: number): string[] {
  const args = ['-a', ifA, '-b', ifB, '-d', String(p.rttMs / 2), '--stats', statsPath];
  if (p.jitterMs > 0) args.push('-j', String(p.jitterMs / 2));
  if (p.rateBps > 0) args.push('-r', String(p.rateBps));
  if (p.loss > 0) args.push('-l', String(p.loss));
  if (seed !== undefined) args.push('-s', String(seed));
  // Real-time priority keeps releases on time on a box shared with the tunnel under test (docs/lab.md).
  args.push('--rt', '10');
  return args;
}

/** "12 ms ±1 ms, 1 Gbit/s, 0 % loss" for logs and reports. */
export function describeWan(p: WanProfile): string {
  const r = p.rateBps >= 1e9 ? `${p.rateBps / 1e9} Gbit/s` : p.rateBps > 0 ? `${p.rateBps / 1e6} Mbit/s` : 'no rate limit';
  return `RTT ${p.rttMs} ms${p.jitterMs ? ` ±${p.jitterMs} ms` : ''}, ${r}, ${+(p.loss * 100).toFixed(3)} % loss`;
}
