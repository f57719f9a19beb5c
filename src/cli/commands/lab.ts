// SPDX-License-Identifier: UNLICENSED
// `connector lab up|down|status|exec NODE -- CMD`: the network lab (docs/lab.md).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { UsageError } from '../../shared/errors.js';
import {
  DEFAULT_LAB_DIR,
  labDown,
  labHints,
  labStatus,
  labUp,
  nodeNs,
  startLabProcess,
  stopLabProcess,
  type LabStatusReport,
} from '../../lab/main.js';
import { checkTools } from '../../lab/adapters/build.js';
import { readLabState } from '../../lab/adapters/state.js';
import { planLab, WIRINGS, type Wiring } from '../../lab/core/topology.js';
import { flag, parseCommandArgs, runArgvSubcommand, str } from '../../shared/cli/args.js';

const HELP = `usage: connector lab <up|down|status|restart|exec> [options]

  up      [--dir DIR] [--wiring one-port|two-port] [--no-headend] [--no-agents] [--cert-lifetime S]
          build the lab in network namespaces, generate its PKI, registry and configs, write each
          Connector's factory block (its only identity), start the EST server and the headend (dc)
          and the agents (connector, connector-b), which enroll and then open their tunnels
          --cert-lifetime: operational certificate lifetime in s (60..), default 86400
  down    [--dir DIR] [--prefix PFX]   stop the lab's processes and delete its namespaces (any state)
  status  [--dir DIR] [--json]         nodes, namespaces, addresses, processes
  restart [--dir DIR] PROCESS          stop (SIGTERM) and start one of est, headend, agent-a, agent-b
  exec    [--dir DIR] NODE -- CMD...   run CMD inside NODE's namespace

  --dir DIR   where the lab keeps its state, PKI, configs and logs (default ${DEFAULT_LAB_DIR})

Needs root (network namespaces). See docs/lab.md.`;

function out(line: string): void {
  process.stdout.write(line + '\n');
}

function dirOf(values: ReturnType<typeof parseCommandArgs>): string {
  return resolve(str(values, 'dir') ?? DEFAULT_LAB_DIR);
}

async function up(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, {
    dir: { type: 'string' },
    wiring: { type: 'string' },
    'no-headend': { type: 'boolean' },
    'no-agents': { type: 'boolean' },
    'cert-lifetime': { type: 'string' },
  }, false);
  if (p.help) return help();
  const wiring = str(p, 'wiring') ?? 'one-port';
  if (!WIRINGS.includes(wiring as Wiring)) throw new UsageError(`--wiring must be one of ${WIRINGS.join(', ')}, not "${wiring}"`);
  const lifetime = str(p, 'cert-lifetime');
  if (lifetime !== undefined && !/^\d+$/.test(lifetime)) throw new UsageError(`--cert-lifetime must be whole seconds (60 or more), not "${lifetime}"`);
  const certLifetimeS = lifetime === undefined ? undefined : Number(lifetime);
  if (certLifetimeS !== undefined && (certLifetimeS < 60 || certLifetimeS > 398 * 86_400)) {
    throw new UsageError(`--cert-lifetime must be 60..${398 * 86_400} s, not ${certLifetimeS}`);
  }
  const dir = dirOf(p);
  const started = Date.now();
  const state = await labUp({
    dir,
    wiring: wiring as Wiring,
    headend: !flag(p, 'no-headend'),
    agents: !flag(p, 'no-agents'),
    ...(certLifetimeS !== undefined ? { certLifetimeS } : {}),
    progress: (l) => out(`lab: ${l}`),
  });
  out(`lab: up in ${((Date.now() - started) / 1000).toFixed(1)} s, prefix ${state.prefix}, ${wiring} wiring, files in ${dir}\n`);
  const plan = planLab(state.wiring);
  const width = Math.max(...plan.nodes.map((n) => n.name.length));
  out('nodes:');
  for (const n of plan.nodes) out(`  ${n.name.padEnd(width)}  ${n.description}`);
  const procs = state.processes.filter((x) => x.pid > 0);
  if (procs.length > 0) {
    out('\nprocesses:');
    for (const x of procs) out(`  ${x.name.padEnd(width)}  pid ${x.pid} in ${x.node}, log ${x.log}`);
  }
  out('\ntry:');
  for (const h of labHints(dir)) out(`  ${h}`);
  if ((await checkTools(['ping'])).length > 0) out('  (ping is not installed on this host: apt-get install iputils-ping)');
  return 0;
}

async function down(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, prefix: { type: 'string' } }, false);
  if (p.help) return help();
  const r = await labDown(dirOf(p), str(p, 'prefix'));
  if (r.killed.length > 0) out(`lab: stopped ${r.killed.join(', ')}`);
  out(`lab: removed ${r.namespaces.length} namespaces (${r.prefix}-*)`);
  return 0;
}

function printStatus(s: LabStatusReport): void {
  out(`lab ${s.prefix} (${s.wiring}, ${s.phase}) in ${s.dir}`);
  const width = Math.max(...s.nodes.map((n) => n.node.length));
  for (const n of s.nodes) {
    const state = n.exists ? n.addrs.join(', ') || '-' : 'MISSING';
    out(`  ${n.node.padEnd(width)}  ${state}${n.pids.length ? `  pids ${n.pids.join(' ')}` : ''}`);
  }
  for (const x of s.processes) {
    out(`  ${x.name.padEnd(width)}  ${x.alive ? `running, pid ${x.pid}` : x.pid > 0 ? `EXITED (pid ${x.pid})` : 'not started'}  log ${x.log}`);
  }
  for (const t of s.tunnels) {
    const rtt = t.rttMs !== undefined ? `, RTT ${t.rttMs.toFixed(2)} ms` : '';
    const alarms = t.activeAlarms > 0 ? `, ${t.activeAlarms} ACTIVE ALARM(S) (see connector-agent status --config ${s.dir}/${t.node}/connector.uci)` : '';
    const id = t.identity ? `, identity ${t.identity}${t.identity !== 'ready' && t.identityReason ? ` (${t.identityReason})` : ''}` : '';
    out(`  tunnel of ${t.node}: ${t.state}${t.vni !== undefined ? `, VNI ${t.vni}` : ''}${rtt}${id}${alarms}${t.error ? ` (${t.error})` : ''}`);
  }
}

async function status(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, json: { type: 'boolean' } }, false);
  if (p.help) return help();
  const s = await labStatus(dirOf(p));
  if (flag(p, 'json')) out(JSON.stringify(s, null, 2));
  else printStatus(s);
  return 0;
}

async function restart(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' } });
  if (p.help) return help();
  const name = p.positionals[0];
  if (name === undefined || p.positionals.length !== 1) throw new UsageError('usage: connector lab restart [--dir DIR] PROCESS (est, headend, agent-a, agent-b)');
  const dir = dirOf(p);
  const state = readLabState(dir);
  if (!state.processes.some((x) => x.name === name)) {
    throw new UsageError(`no process "${name}" in this lab; processes: ${state.processes.map((x) => x.name).join(', ')}`);
  }
  await stopLabProcess(state, name, 'SIGTERM', 3_000);
  const next = startLabProcess(readLabState(dir), name);
  const x = next.processes.find((q) => q.name === name);
  out(`lab: ${name} restarted, pid ${x?.pid ?? '?'}, log ${x?.log ?? '?'}`);
  return 0;
}

async function execIn(argv: string[]): Promise<number> {
  const sep = argv.indexOf('--');
  const own = sep === -1 ? argv : argv.slice(0, sep);
  const cmd = sep === -1 ? [] : argv.slice(sep + 1);
  const p = parseCommandArgs(own, { dir: { type: 'string' } });
  if (p.help) return help();
  const node = p.positionals[0];
  if (node === undefined || p.positionals.length !== 1 || cmd.length === 0) {
    throw new UsageError('usage: connector lab exec [--dir DIR] NODE -- CMD [ARGS...]');
  }
  const ns = nodeNs(readLabState(dirOf(p)), node);
  return new Promise((res) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit' });
    child.on('error', (e) => {
      process.stderr.write(`connector lab exec: ${e.message}\n`);
      res(1);
    });
    child.on('close', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
}

function help(): number {
  out(HELP);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('lab', argv, HELP, { up, down, status, restart, exec: execIn });
}
