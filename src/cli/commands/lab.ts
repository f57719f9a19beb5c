// SPDX-License-Identifier: UNLICENSED
// `connector lab up|down|status|restart|exec NODE -- CMD`: the network lab (docs/lab.md). Parses the
// command line; src/lab/main.ts does the work.
import { UsageError } from '../../shared/errors.js';
import { flag, parseCommandArgs, runArgvSubcommand, str } from '../../shared/cli/args.js';
import {
  DEFAULT_LAB_DIR,
  down as labDown,
  execIn as labExec,
  restart as labRestart,
  status as labStatus,
  up as labUp,
  parseWanSpec,
} from '../../lab/main.js';

const HELP = `usage: connector lab <up|down|status|restart|exec> [options]

  up      [--dir DIR] [--wiring one-port|two-port] [--no-headend] [--no-agents] [--cert-lifetime S]
          [--slow-core FRACTION] [--wan RTT,JITTER,RATE,LOSS] [--nat-udp-timeout S]
          build the lab in network namespaces, generate its PKI, registry and configs, write each
          Connector's factory block (its only identity), start the EST server and the headend (dc)
          and the agents (connector, connector-b), which enroll and then open their tunnels
          --cert-lifetime: operational certificate lifetime in s (60..), default 86400
          --slow-core: confine the headend and each agent to FRACTION of one core (e.g. 0.125, about
          a Cortex-A55's per-packet speed; cgroup CPU bandwidth, 10 ms period)
          --wan: a WAN between isp and dc (the delay line, native/wan): round-trip delay, its jitter,
          rate, loss per direction, e.g. 12ms,1ms,1g,0 (= "default", the seed's link) or 30ms,0,500m,0.1%
          --nat-udp-timeout: conntrack UDP timeout of every NAT in the lab, s (kernel default 30/120)
  down    [--dir DIR] [--prefix PFX]   stop the lab's processes and delete its namespaces (any state)
  status  [--dir DIR] [--json]         nodes, namespaces, addresses, processes
  restart [--dir DIR] PROCESS          stop (SIGTERM) and start one of est, headend, agent-a, agent-b
  exec    [--dir DIR] NODE -- CMD...   run CMD inside NODE's namespace

  --dir DIR   where the lab keeps its state, PKI, configs and logs (default ${DEFAULT_LAB_DIR})

Needs root (network namespaces). See docs/lab.md.`;

function help(): number {
  process.stdout.write(HELP + '\n');
  return 0;
}

async function up(argv: string[]): Promise<number> {
  const p = parseCommandArgs(
    argv,
    {
      dir: { type: 'string' },
      wiring: { type: 'string' },
      'no-headend': { type: 'boolean' },
      'no-agents': { type: 'boolean' },
      'cert-lifetime': { type: 'string' },
      'slow-core': { type: 'string' },
      wan: { type: 'string' },
      'nat-udp-timeout': { type: 'string' },
    },
    false,
  );
  if (p.help) return help();
  const lifetime = str(p, 'cert-lifetime');
  if (lifetime !== undefined && !/^\d+$/.test(lifetime))
    throw new UsageError(`--cert-lifetime must be whole seconds (60 or more), not "${lifetime}"`);
  const certLifetimeS = lifetime === undefined ? undefined : Number(lifetime);
  if (certLifetimeS !== undefined && (certLifetimeS < 60 || certLifetimeS > 398 * 86_400)) {
    throw new UsageError(`--cert-lifetime must be 60..${398 * 86_400} s, not ${certLifetimeS}`);
  }
  const slow = str(p, 'slow-core');
  const slowCore = slow === undefined ? undefined : Number(slow);
  if (slowCore !== undefined && !(slowCore >= 0.01 && slowCore <= 1)) {
    throw new UsageError(`--slow-core must be a fraction of one core in 0.01..1 (e.g. 0.125), not "${slow}"`);
  }
  const natUdp = str(p, 'nat-udp-timeout');
  if (natUdp !== undefined && !(/^\d+$/.test(natUdp) && Number(natUdp) >= 1 && Number(natUdp) <= 86_400)) {
    throw new UsageError(`--nat-udp-timeout must be whole seconds 1..86400, not "${natUdp}"`);
  }
  const wanSpec = str(p, 'wan');
  return labUp({
    dir: str(p, 'dir'),
    slowCore,
    wan: wanSpec === undefined ? undefined : parseWanSpec(wanSpec),
    natUdpTimeoutS: natUdp === undefined ? undefined : Number(natUdp),
    wiring: str(p, 'wiring') ?? 'one-port',
    headend: !flag(p, 'no-headend'),
    agents: !flag(p, 'no-agents'),
    certLifetimeS,
  });
}

async function down(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, prefix: { type: 'string' } }, false);
  if (p.help) return help();
  return labDown({ dir: str(p, 'dir'), prefix: str(p, 'prefix') });
}

async function status(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, json: { type: 'boolean' } }, false);
  if (p.help) return help();
  return labStatus({ dir: str(p, 'dir'), json: flag(p, 'json') });
}

async function restart(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' } });
  if (p.help) return help();
  const name = p.positionals[0];
  if (name === undefined || p.positionals.length !== 1)
    throw new UsageError('usage: connector lab restart [--dir DIR] PROCESS (est, headend, agent-a, agent-b)');
  return labRestart({ dir: str(p, 'dir'), name });
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
  return labExec({ dir: str(p, 'dir'), node, cmd });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('lab', argv, HELP, { up, down, status, restart, exec: execIn });
}
