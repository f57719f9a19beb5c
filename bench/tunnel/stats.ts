// SPDX-License-Identifier: UNLICENSED
// Pure helpers for the tunnel benchmark: parse iperf3/ping output, summarise repeated runs.

export interface Summary {
  min: number;
  median: number;
  max: number;
  n: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export function summarise(values: readonly number[]): Summary {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { min: v[0] as number, median, max: v[v.length - 1] as number, n: v.length };
}

export interface PingStats {
  sent: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
  avg: number;
}

/** Per-reply RTTs from `ping` output (`time=0.123 ms`), so percentiles are real, not ping's own avg/mdev. */
export function parsePing(text: string): PingStats {
  const rtts = [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  const tx = /(\d+) packets transmitted, (\d+) received/.exec(text);
  const avg = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : NaN;
  return {
    sent: Number(tx?.[1] ?? 0),
    received: Number(tx?.[2] ?? rtts.length),
    p50: percentile(rtts, 50),
    p99: percentile(rtts, 99),
    max: rtts.length ? (rtts[rtts.length - 1] as number) : NaN,
    avg,
  };
}

interface Iperf3Json {
  error?: string;
  start?: { tcp_mss_default?: number };
  end?: {
    sum_received?: { bits_per_second?: number; bytes?: number };
    sum_sent?: { retransmits?: number; bytes?: number };
    sum?: {
      bits_per_second?: number;
      lost_percent?: number;
      jitter_ms?: number;
      packets?: number;
      lost_packets?: number;
      seconds?: number;
    };
  };
}

export interface TcpResult {
  mbps: number;
  retransmits: number;
  /** Bytes the receiver got (inner TCP payload): the denominator of CPU-seconds per GB. */
  bytes: number;
  /** Retransmitted segments per 1,000 sent (segments estimated from bytes sent and the MSS). */
  retransPer1000: number;
}

export function parseIperfTcp(json: string): TcpResult {
  const j = JSON.parse(json) as Iperf3Json;
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const retransmits = j.end?.sum_sent?.retransmits ?? 0;
  const segments = (j.end?.sum_sent?.bytes ?? NaN) / (j.start?.tcp_mss_default || 1448);
  return {
    mbps: (j.end?.sum_received?.bits_per_second ?? NaN) / 1e6,
    retransmits,
    bytes: j.end?.sum_received?.bytes ?? NaN,
    retransPer1000: segments > 0 ? (1000 * retransmits) / segments : NaN,
  };
}

export interface UdpResult {
  goodputMbps: number;
  lossPercent: number;
  jitterMs: number;
  /** Datagrams delivered per second (for the 64-byte frame rate). */
  deliveredPps: number;
  /** The sender's time: what rates are per. */
  seconds: number;
}

export function parseIperfUdp(json: string): UdpResult {
  const j = JSON.parse(json) as Iperf3Json;
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const s = j.end?.sum ?? {};
  const loss = s.lost_percent ?? NaN;
  const delivered = (s.packets ?? 0) - (s.lost_packets ?? 0);
  return {
    goodputMbps: ((s.bits_per_second ?? NaN) * (1 - loss / 100)) / 1e6,
    lossPercent: loss,
    jitterMs: s.jitter_ms ?? NaN,
    deliveredPps: s.seconds ? delivered / s.seconds : NaN,
    seconds: s.seconds ?? NaN,
  };
}

/**
 * UDP datagrams that reached a host's UDP layer, from its /proc/net/snmp: those a socket took and those
 * dropped for a full receive buffer. What a tunnel delivered to the host, whether or not the receiving
 * program kept up (a flood of small frames outruns iperf3's one read per datagram).
 */
export function udpArrivals(snmp: string): number {
  const rows = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
  const [names, values] = rows.map((l) => l.trim().split(/\s+/).slice(1));
  if (!names || !values) throw new Error('no Udp: rows in /proc/net/snmp');
  const field = (name: string): number => {
    const v = Number(values[names.indexOf(name)]);
    if (!Number.isFinite(v)) throw new Error(`no Udp ${name} in /proc/net/snmp`);
    return v;
  };
  return field('InDatagrams') + field('RcvbufErrors');
}
