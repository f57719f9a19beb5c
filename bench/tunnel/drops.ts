// SPDX-License-Identifier: UNLICENSED
// Where a frame was dropped, from the daemons' own counters: the agent's status document (every number
// under a key that says "drop") and the headend's drop metrics. Read before and after a phase, the
// difference says which counter a lost ping went to; an empty difference points outside the tunnel.
import { createConnection } from 'node:net';
import { nsExec } from '../../src/lab/adapters/netns.js';

/** How a scenario's daemons are asked: the agent's status socket, the headend's metrics in its namespace. */
export interface DropSources {
  agentSocket: string;
  headendNs: string;
  headendMetrics: string;
}

export type DropCounters = Record<string, number>;

function readSocket(path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path);
    let text = '';
    const timer = setTimeout(() => c.destroy(new Error(`no status from ${path} within ${timeoutMs} ms`)), timeoutMs);
    c.setEncoding('utf8');
    c.on('data', (s: string) => (text += s));
    c.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Every number in `doc` whose path names a drop, keyed by that path. */
export function dropNumbers(doc: unknown, path = 'agent', out: DropCounters = {}): DropCounters {
  if (typeof doc === 'number') {
    if (/drop/i.test(path)) out[path] = doc;
  } else if (doc !== null && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) dropNumbers(v, `${path}.${k}`, out);
  }
  return out;
}

/** The `*drops_total` samples of a Prometheus text page, keyed by name and labels. */
export function dropMetrics(text: string): DropCounters {
  const out: DropCounters = {};
  for (const line of text.split('\n')) {
    const m = /^(connector_headend_[a-z_]*drops_total(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/.exec(line);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

export async function readDrops(s: DropSources): Promise<DropCounters> {
  const [status, metrics] = await Promise.all([
    readSocket(s.agentSocket, 5_000).catch(() => '{}'),
    nsExec(s.headendNs, 'curl', ['-s', '--max-time', '5', s.headendMetrics], { allowFailure: true }).then((r) => r.stdout),
  ]);
  let doc: unknown = {};
  try {
    doc = JSON.parse(status) as unknown;
  } catch {
    // No status: the agent's side stays unknown, the headend's still counts.
  }
  return { ...dropNumbers(doc), ...dropMetrics(metrics) };
}

/** The counters that grew from `before` to `after`, by how much. */
export function grown(before: DropCounters, after: DropCounters): DropCounters {
  const out: DropCounters = {};
  for (const [k, v] of Object.entries(after)) if (v > (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}
