// SPDX-License-Identifier: UNLICENSED
// Runs the drill probe (core/probe-tool.ts) on one side: inside a network namespace (a helper namespace
// on the Connector's LAN, or the drill VM's), or in this one.
import { exec } from '../../shared/exec.js';
import { ConnectorError } from '../../shared/errors.js';
import { PY_DRILL_PROBE } from '../core/probe-tool.js';

export interface ProbeResult {
  target: string;
  ifname: string;
  arp: { mac: string; ms: number } | null;
  icmp: { sent: number; received: number; rttMs: number[] };
  errors: string[];
}

export async function runProbe(o: {
  netns?: string | undefined;
  ifname: string;
  target: string;
  count: number;
  timeoutS: number;
}): Promise<ProbeResult> {
  const py = ['python3', '-c', PY_DRILL_PROBE, o.ifname, o.target, String(o.count), String(o.timeoutS)];
  const [cmd, ...args] = o.netns ? ['ip', 'netns', 'exec', o.netns, ...py] : py;
  const r = await exec(cmd ?? 'python3', args, { allowFailure: true });
  if (r.code !== 0) throw new ConnectorError('CK_ERR_DRILL', `probe failed (${r.code}): ${r.stderr.trim().slice(-400)}`);
  return JSON.parse(r.stdout) as ProbeResult;
}
