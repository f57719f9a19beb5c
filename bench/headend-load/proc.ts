// SPDX-License-Identifier: UNLICENSED
// What the load tool reads from the system: a process's RSS and CPU time (/proc), the network namespace's
// TCP counters (/proc/net/netstat: TcpExtListenOverflows), established connections on a port (ss), and
// a headend child whose JSON log goes to a file (a pipe back to this process would make the probe's loop
// parse every log line of N sessions).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = new URL('../../', import.meta.url).pathname;

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** `pid` and its descendants (a headend's workers and its iproute2 helpers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 256; i++) {
    const r = spawnSync('pgrep', ['-P', String(out[i])], { encoding: 'utf8' });
    for (const l of r.stdout.split('\n')) if (l.trim() !== '') out.push(Number(l));
  }
  return out;
}

/** Summed over the process tree: shared pages count once per process, so this is an upper bound. */
export function treeRssMb(pid: number): number {
  return processTree(pid).reduce((a, p) => a + (safe(() => rssMb(p)) ?? 0), 0);
}

export function treeCpuMs(pid: number): number {
  return processTree(pid).reduce((a, p) => a + (safe(() => cpuMs(p)) ?? 0), 0);
}

const safe = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined; // the process ended between the listing and the read
  }
};

/** Kernel slab memory, MB (/proc/meminfo): where a TAP port's netdev and queues live. */
export function slabMb(): number {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** utime + stime of `pid`, ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** TcpExt counters of this network namespace. */
export function tcpExt(): Record<string, number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const k = (lines[i] ?? '').split(/\s+/);
    const v = (lines[i + 1] ?? '').split(/\s+/);
    if (k[0] !== 'TcpExt:') continue;
    for (let j = 1; j < k.length; j++) out[k[j] ?? ''] = Number(v[j]);
  }
  return out;
}

/** Established TCP connections whose local port is `port` (the headend's side). */
export function establishedOn(port: number): number {
  const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.stdout ? r.stdout.split('\n').filter((l) => l.length > 0).length : 0;
}

export interface HeadendChild {
  child: ChildProcess;
  pid: number;
  exited: Promise<number>;
  logFile: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `connector headend --config FILE` from this repo; resolves once it logs that it listens. */
export async function startHeadendProcess(configFile: string, dir: string, n: number, timeoutMs = 30_000): Promise<HeadendChild> {
  const logFile = join(dir, `headend-${n}.log`);
  const fd = openSync(logFile, 'w');
  // CK_LOAD_HEADEND_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the headend alone.
  const nodeArgs = (process.env['CK_LOAD_HEADEND_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', join(REPO, 'src/cli/connector.ts'), 'headend', '--config', configFile],
    {
      cwd: REPO,
      // stdout too: what a profiling flag prints (--trace-gc) lands beside the logs.
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const exited = new Promise<number>((r) => child.once('exit', (code, sig) => r(code ?? (sig ? 128 : 0))));
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`headend exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (readFileSync(logFile, 'utf8').includes('"headend listening"')) return { child, pid: child.pid ?? 0, exited, logFile };
    await sleep(20);
  }
  child.kill('SIGKILL');
  throw new Error(`headend did not listen within ${timeoutMs} ms`);
}

export function auditVerifies(auditFile: string): { ok: boolean; output: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), 'audit', 'verify', '--log', auditFile], {
    cwd: REPO,
    encoding: 'utf8',
  });
  return { ok: r.status === 0, output: (r.stdout + r.stderr).trim().slice(-400) };
}
