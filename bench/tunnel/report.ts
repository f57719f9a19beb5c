// SPDX-License-Identifier: UNLICENSED
// Markdown rendering of a bench result: medians with [min..max], ratios to OpenVPN-TAP-TCP and to the bare
// path (bridge-only), each on the same WAN profile and measured in the same run.
import type { Summary } from './stats.js';

interface Result {
  time: string;
  tools: Record<string, string>;
  settings: { runs: number; durationS: number; udpRate: string; scenarios: readonly string[] };
  summary: Record<string, Record<string, Summary>>;
  samples: readonly { scenario: string; error?: string }[];
}

const ROWS: [string, string, number][] = [
  ['tcp1Mbps', 'TCP 1 stream (Mbit/s)', 0],
  ['tcp4Mbps', 'TCP 4 streams (Mbit/s)', 0],
  ['tcp1RetransPer1000', 'TCP 1 stream retransmits per 1,000 segments', 2],
  ['tcp4RetransPer1000', 'TCP 4 streams retransmits per 1,000 segments', 2],
  ['tcp1RevMbps', 'TCP 1 stream, datacentre to LAN (Mbit/s)', 0],
  ['tcp1RevRetransPer1000', 'TCP 1 stream, datacentre to LAN, retransmits per 1,000 segments', 2],
  ['udpGoodputMbps', 'UDP goodput at fixed rate (Mbit/s)', 0],
  ['udpLossPercent', 'UDP loss (%)', 2],
  ['smallFramesPps', '64-byte frames delivered to iperf3 (frames/s)', 0],
  ['smallFramesAtHostPps', '64-byte frames reaching the far host (frames/s)', 0],
  ['idleRttP50Ms', 'idle RTT p50 (ms)', 3],
  ['idleRttP99Ms', 'idle RTT p99 (ms)', 3],
  ['loadedRttP50Ms', 'loaded RTT p50 (ms)', 2],
  ['loadedRttP99Ms', 'loaded RTT p99 (ms)', 2],
  ['loadedRttMaxMs', 'loaded RTT max (ms)', 2],
  ['loadedPingLossPercent', 'loaded ping loss (%)', 2],
  ['idlePingsLost', 'idle pings lost (--idle-pings, 20/s)', 0],
];

/** The same scenario's key on the same WAN profile (`scenario@profile`). */
function sibling(key: string, scenario: string): string {
  const at = key.indexOf('@');
  return at < 0 ? scenario : `${scenario}${key.slice(at)}`;
}

function cell(s: Summary | undefined, digits: number): string {
  if (!s || s.n === 0) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return s.n === 1 ? f(s.median) : `${f(s.median)} [${f(s.min)}..${f(s.max)}]`;
}

export function renderMarkdown(r: Result): string {
  const sc = r.settings.scenarios;
  const lines = [
    `# Tunnel benchmark ${r.time}`,
    '',
    `${r.settings.runs} runs per scenario, alternating order, ${r.settings.durationS} s per iperf3 test, UDP at ${r.settings.udpRate} with 1200-byte datagrams. Median [min..max]. ${Object.entries(
      r.tools,
    )
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}.`,
    '',
    `| metric | ${sc.join(' | ')} |`,
    `|---|${sc.map(() => '---').join('|')}|`,
  ];
  for (const [key, label, digits] of ROWS) {
    lines.push(`| ${label} | ${sc.map((s) => cell(r.summary[s]?.[key], digits)).join(' | ')} |`);
  }
  const procKeys = new Set(
    sc.flatMap((s) =>
      Object.keys(r.summary[s] ?? {}).filter((k) => /PeakRssMb$|CpuS$|CpuSPerGB$|CpuSPerGBReverse$|LoopSPerGB$|LoopSPerGBReverse$/.test(k)),
    ),
  );
  for (const k of [...procKeys].sort()) lines.push(`| ${k} | ${sc.map((s) => cell(r.summary[s]?.[k], 2)).join(' | ')} |`);
  for (const [baseName, title] of [
    ['openvpn-tap-tcp', 'Ratios to OpenVPN-TAP-TCP on the same WAN'],
    ['bridge-only', 'Ratios to the bare path (bridge-only) on the same WAN'],
  ] as const) {
    if (!sc.some((s) => r.summary[sibling(s, baseName)])) continue;
    lines.push('', `**${title}** (median / median; > 1 is better for throughput, < 1 is better for RTT):`, '');
    lines.push(`| metric | ${sc.join(' | ')} |`, `|---|${sc.map(() => '---').join('|')}|`);
    for (const key of ['tcp1Mbps', 'tcp4Mbps', 'tcp1RevMbps', 'loadedRttP99Ms', 'idleRttP50Ms']) {
      lines.push(
        `| ${key} | ${sc
          .map((s) => {
            const v = r.summary[s]?.[key]?.median;
            const b = r.summary[sibling(s, baseName)]?.[key]?.median;
            return v !== undefined && b && Number.isFinite(v / b) ? (v / b).toFixed(2) : 'n/a';
          })
          .join(' | ')} |`,
      );
    }
  }
  const errors = r.samples.filter((s) => s.error);
  if (errors.length) lines.push('', `Failed runs: ${errors.map((e) => `${e.scenario}: ${e.error}`).join('; ')}`);
  return lines.join('\n') + '\n';
}
