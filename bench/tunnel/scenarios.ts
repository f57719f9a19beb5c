// SPDX-License-Identifier: UNLICENSED
// The four things measured side by side: connector-kit's tunnel (agent + headend + kernel VTEP), OpenVPN
// 2.6 TAP over TCP with TLS 1.3 and --tcp-nodelay (what users would otherwise run) and over UDP (its
// usual deployment, no TCP-over-TCP), kernel VXLAN (the
// ceiling) and a plain bridge (no tunnel: what every tunnel adds is measured against it).
import { mkdirSync, writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from '../../src/shared/exec.js';
import { ipIn, nsExec, spawnInNetns } from '../../src/lab/adapters/netns.js';
import { writeLabPki } from '../../src/lab/adapters/pki.js';
import { projectRoot } from '../../src/lab/adapters/programs.js';
import { findTapAddon, TAP_ADDON_ENV } from '../../src/shared/native/addon.js';
import { build } from 'esbuild';
import { parseRegistry } from '../../src/shared/registry/registry.js';
import { ADDR, bridgeLan, buildBase, fabricLeg, kernelVxlan, type BenchNet } from './topology.js';
import type { DropSources } from './drops.js';

export const SCENARIOS = [
  'connector',
  'connector-datagram',
  'connector-kernel-l2',
  'openvpn-tap-tcp',
  'openvpn-tap-udp',
  'wireguard-go-vxlan',
  'kernel-vxlan',
  'bridge-only',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Running {
  /** Processes whose CPU and peak RSS are reported (the tunnel's own daemons). */
  procs: Record<string, number>;
  notes: string;
  /** The connector's daemons: where their drop counters are read (drops.ts). */
  drops?: DropSources;
}

const SERIAL = 'BENCH-0001';
const HEADEND_METRICS_PORT = 9109;

/**
 * The daemons run as esbuild bundles, the way the device runs the agent (src/image/sea.ts), not under
 * tsx: tsx's loader thread would add tens of MB to the RSS measured and CPU at start-up. Bundled once per
 * bench process from the current sources.
 */
let bundles: Promise<{ agent: string; headend: string }> | undefined;
function benchBundles(dir: string): Promise<{ agent: string; headend: string }> {
  bundles ??= (async () => {
    const root = projectRoot();
    const common = {
      bundle: true,
      platform: 'node' as const,
      format: 'esm' as const,
      target: 'node20',
      logLevel: 'warning' as const,
      banner: { js: "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);" },
    };
    mkdirSync(dir, { recursive: true });
    const agent = join(dir, 'connector-agent.mjs');
    const headend = join(dir, 'connector-headend.mjs');
    await build({ ...common, entryPoints: [join(root, 'src/agent/cli.ts')], outfile: agent });
    await build({
      ...common,
      outfile: headend,
      stdin: {
        contents:
          "import { runCommand } from './src/shared/cli/dispatch.ts';\n" +
          "import * as headend from './src/cli/commands/headend.ts';\n" +
          "process.exitCode = await runCommand('connector', { headend: [async () => headend, 'headend'] }, process.argv.slice(2));\n",
        resolveDir: root,
        loader: 'ts',
      },
    });
    return { agent, headend };
  })();
  return bundles;
}

/**
 * `CK_BENCH_SEND_THREADS=1` or `0`: both daemons' send threads on or off (agent `send_thread`, headend
 * `sendThreads`); unset: their default (off).
 */
function sendThreadsSetting(env: NodeJS.ProcessEnv = process.env): boolean | null {
  const v = env['CK_BENCH_SEND_THREADS'];
  return v === '1' ? true : v === '0' ? false : null;
}

/** `CK_BENCH_AGENT_OPTIONS='lan_coalesce=0,aqm_target_ms=10'`: more agent options, for a with/without comparison. */
function extraAgentOptions(env: NodeJS.ProcessEnv = process.env): string[] {
  const threads = sendThreadsSetting(env);
  return [...(env['CK_BENCH_AGENT_OPTIONS'] ?? '').split(','), ...(threads === null ? [] : [`send_thread=${threads ? 1 : 0}`])]
    .filter(Boolean)
    .map((kv) => {
      const m = /^([a-z_]+)=([^'\n]*)$/.exec(kv.trim());
      if (!m) throw new Error(`CK_BENCH_AGENT_OPTIONS: '${kv}' is not name=value`);
      return `\toption ${m[1]} '${m[2]}'`;
    });
}

/**
 * `datagram`: the agent asks for the datagram channel (`option datagram '1'`, its default, docs/datagram.md); else
 * `datagram '0'`, the TLS/TCP path alone.
 * `kernelL2`: the headend switches on the kernel's bridge and vxlan device (docs/headend.md).
 */
async function connector(net: BenchNet, work: string, datagram = false, kernelL2 = false): Promise<Running> {
  const sendThreads = sendThreadsSetting();
  await buildBase(net, { hostMtu: 1500, hbOn: 'gv' });
  await bridgeLan(net.ns.ga);
  await fabricLeg(net);
  await kernelVxlan(net.ns.gv, ADDR.fabricVtep, ADDR.fabricHeadend, 'f0', 42, 1500);
  await bridgeLan(net.ns.gv, 'vx0');
  const pki = await writeLabPki(join(work, 'pki'), {
    now: new Date(),
    headendIps: [ADDR.underB],
    headendDns: ['headend.bench'],
    estIps: [],
    estDns: [],
    devices: [{ serial: SERIAL, issuer: 'device-ca' }],
  });
  const registry = parseRegistry({
    version: 1,
    tenants: { bench: { segments: { lan: { vni: 42, vteps: [ADDR.fabricVtep], vtepPathMtu: 1600 } } } },
    devices: { [SERIAL]: { state: 'claimed', tenant: 'bench', segment: 'lan', updatedAt: new Date().toISOString() } },
    denylist: [],
  });
  writeFileSync(join(work, 'registry.json'), JSON.stringify(registry));
  writeFileSync(
    join(work, 'headend.json'),
    JSON.stringify({
      listen: { host: ADDR.underB, port: 443 },
      tls: { cert: pki.headendCert, key: pki.headendKey, deviceCa: pki.deviceCa },
      registry: join(work, 'registry.json'),
      auditLog: join(work, 'audit.jsonl'),
      // Read for drop counters (drops.ts), inside the headend's namespace only.
      metrics: { host: '127.0.0.1', port: HEADEND_METRICS_PORT },
      // CK_BENCH_VXLAN_COALESCE=0: the headend without coalescing toward the agent, for figures before.
      vxlan: { localAddress: ADDR.fabricHeadend, coalesce: process.env['CK_BENCH_VXLAN_COALESCE'] !== '0' },
      ...(kernelL2 ? { l2: { engine: 'kernel' } } : {}),
      ...(sendThreads === null ? {} : { sendThreads }),
    }),
  );
  const idDir = join(work, 'identity');
  mkdirSync(idDir, { recursive: true });
  const dev = pki.devices[SERIAL];
  if (!dev) throw new Error('bench PKI has no device certificate');
  writeFileSync(join(idDir, 'op.cert.pem'), readFileSync(dev.cert));
  writeFileSync(join(idDir, 'op.key.pem'), readFileSync(dev.key), { mode: 0o600 });
  writeFileSync(join(idDir, 'dc-ca.pem'), readFileSync(pki.dcCa));
  writeFileSync(
    join(work, 'connector.uci'),
    [
      "config agent 'agent'",
      `\tlist headend 'tls://${ADDR.underB}:443'`,
      "\toption bridge 'br0'",
      "\toption tap_name 'tap-dr'",
      `\toption identity_dir '${idDir}'`,
      `\toption status_socket '${join(work, 'agent.sock')}'`,
      "\toption log_format 'json'",
      // The datagram channel is the agent's default; `connector` measures the TLS/TCP path alone.
      `\toption datagram '${datagram ? 1 : 0}'`,
      ...extraAgentOptions(),
      '',
    ].join('\n'),
  );
  const addon = findTapAddon();
  if (!addon) throw new Error('TAP addon not built: npm run build:addon');
  const env = { ...process.env, LOG_FORMAT: 'json', [TAP_ADDON_ENV]: addon };
  const bin = await benchBundles(join(work, 'bin'));
  // CK_BENCH_HEADEND_NODE_OPTIONS: the same for the headend alone (heap flags, or --import of a hook that turns on --trace-gc).
  const headendNode = process.env['CK_BENCH_HEADEND_NODE_OPTIONS'];
  const headend = spawnInNetns(net.ns.gb, process.execPath, [bin.headend, 'headend', '--config', join(work, 'headend.json')], {
    logFile: join(work, 'headend.log'),
    env: headendNode ? { ...env, NODE_OPTIONS: headendNode } : env,
  });
  await sleep(1500);
  // CK_BENCH_AGENT_NODE_OPTIONS: node options for the agent alone (V8 heap flags, as an init script would set them).
  const agentNode = process.env['CK_BENCH_AGENT_NODE_OPTIONS'];
  const agent = spawnInNetns(net.ns.ga, process.execPath, [bin.agent, 'run', '--config', join(work, 'connector.uci')], {
    logFile: join(work, 'agent.log'),
    env: agentNode ? { ...env, NODE_OPTIONS: agentNode } : env,
  });
  const transport = datagram ? 'UDP datagrams beside TLS 1.3' : 'TLS 1.3';
  const switching = kernelL2 ? ' (session TAP -> kernel bridge -> kernel vxlan)' : '';
  return {
    procs: { agent, headend },
    notes: `agent TAP on br0 -> ${transport} -> headend${switching} -> VXLAN/UDP 4789 -> kernel VTEP; host MTU 1500`,
    drops: {
      agentSocket: join(work, 'agent.sock'),
      headendNs: net.ns.gb,
      headendMetrics: `http://127.0.0.1:${HEADEND_METRICS_PORT}/metrics`,
    },
  };
}

async function openvpn(net: BenchNet, work: string, proto: 'tcp' | 'udp'): Promise<Running> {
  await buildBase(net, { hostMtu: 1500, hbOn: 'gb' });
  const pki = await writeLabPki(join(work, 'pki'), {
    now: new Date(),
    headendIps: [ADDR.underB],
    headendDns: ['ovpn-server'],
    estIps: [],
    estDns: [],
    devices: [{ serial: 'ovpn-client', issuer: 'device-ca' }],
  });
  const client = pki.devices['ovpn-client'];
  if (!client) throw new Error('no client certificate');
  // OpenVPN's --ca must verify both peers: bundle the two lab CAs.
  const ca = join(work, 'ca-bundle.pem');
  writeFileSync(ca, readFileSync(pki.dcCa, 'utf8') + readFileSync(pki.deviceCa, 'utf8'));
  const common = [
    '--dev',
    'tap0',
    '--dev-type',
    'tap',
    '--data-ciphers',
    'AES-256-GCM',
    '--tls-version-min',
    '1.3',
    '--ca',
    ca,
    '--verb',
    '3',
    '--ping',
    '5',
    '--ping-restart',
    '30',
    // TCP_NODELAY only means something on the TCP transport.
    ...(proto === 'tcp' ? ['--tcp-nodelay'] : []),
  ];
  for (const ns of [net.ns.ga, net.ns.gb]) await nsExec(ns, 'openvpn', ['--mktun', '--dev', 'tap0', '--dev-type', 'tap']);
  await bridgeLan(net.ns.ga, 'tap0');
  await bridgeLan(net.ns.gb, 'tap0');
  const server = spawnInNetns(
    net.ns.gb,
    'openvpn',
    [
      ...common,
      '--proto',
      proto === 'tcp' ? 'tcp-server' : 'udp',
      '--local',
      ADDR.underB,
      '--lport',
      '1194',
      '--tls-server',
      '--dh',
      'none',
      '--cert',
      pki.headendCert,
      '--key',
      pki.headendKey,
      '--remote-cert-tls',
      'client',
    ],
    { logFile: join(work, 'ovpn-server.log') },
  );
  const clientPid = spawnInNetns(
    net.ns.ga,
    'openvpn',
    [
      ...common,
      '--proto',
      proto === 'tcp' ? 'tcp-client' : 'udp',
      '--remote',
      ADDR.underB,
      '1194',
      '--nobind',
      '--tls-client',
      '--cert',
      client.cert,
      '--key',
      client.key,
      '--remote-cert-tls',
      'server',
    ],
    { logFile: join(work, 'ovpn-client.log') },
  );
  for (let i = 0; i < 100; i++) {
    if (
      existsSync(join(work, 'ovpn-client.log')) &&
      readFileSync(join(work, 'ovpn-client.log'), 'utf8').includes('Initialization Sequence Completed')
    )
      break;
    await sleep(200);
  }
  return {
    procs: { 'openvpn-client': clientPid, 'openvpn-server': server },
    notes: `OpenVPN 2.6 tap, proto ${proto}, TLS 1.3, AES-256-GCM${proto === 'tcp' ? ', --tcp-nodelay' : ''}; host MTU 1500`,
  };
}

async function vxlan(net: BenchNet): Promise<Running> {
  // MTU 1450 on the hosts: the clean kernel VXLAN configuration (RFC 7348's 50 bytes come off the LAN).
  await buildBase(net, { hostMtu: 1450, hbOn: 'gb' });
  await kernelVxlan(net.ns.ga, ADDR.underA, ADDR.underB, 'u0', 42, 1450);
  await kernelVxlan(net.ns.gb, ADDR.underB, ADDR.underA, 'u0', 42, 1450);
  await bridgeLan(net.ns.ga, 'vx0');
  await bridgeLan(net.ns.gb, 'vx0');
  return { procs: {}, notes: 'kernel vxlan VNI 42 UDP 4789; host MTU 1450' };
}

/**
 * WireGuard in userspace (Debian's wireguard-go: this kernel has no WireGuard module) carrying kernel VXLAN
 * for layer 2: the usual way to get an encrypted L2 tunnel from WireGuard. wg0's MTU is 1420, so VXLAN
 * inside it leaves 1370 for the hosts.
 */
async function wireguardVxlan(net: BenchNet, work: string): Promise<Running> {
  await buildBase(net, { hostMtu: 1370, hbOn: 'gb' });
  const ends = [
    { ns: net.ns.ga, under: ADDR.underA, inner: '10.99.0.1', peerUnder: ADDR.underB, peerInner: '10.99.0.2' },
    { ns: net.ns.gb, under: ADDR.underB, inner: '10.99.0.2', peerUnder: ADDR.underA, peerInner: '10.99.0.1' },
  ];
  const keys = [];
  for (const _ of ends) {
    const priv = (await exec('wg', ['genkey'])).stdout.trim();
    const pub = (await exec('wg', ['pubkey'], { input: priv + '\n' })).stdout.trim();
    keys.push({ priv, pub });
  }
  const pids: number[] = [];
  // wireguard-go's control socket is /var/run/wireguard/<ifname>.sock, outside any namespace: the names
  // must be unique on the machine, not just in the namespace.
  const ifnames = ends.map((_, i) => `${net.prefix}wg${i}`.slice(0, 15));
  // wireguard-go refuses to run on Linux unless told the kernel module is not an option.
  const env = { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' };
  for (const [i, e] of ends.entries()) {
    pids.push(spawnInNetns(e.ns, 'wireguard-go', ['-f', ifnames[i] ?? ''], { logFile: join(work, `wg-${i}.log`), env }));
  }
  for (const [i, e] of ends.entries()) {
    const me = keys[i];
    const peer = keys[1 - i];
    if (!me || !peer) throw new Error('wireguard keys missing');
    const wg = ifnames[i] ?? '';
    const keyFile = join(work, `wg-${i}.key`);
    writeFileSync(keyFile, me.priv + '\n', { mode: 0o600 });
    for (
      let t = 0;
      t < 50 &&
      (await ipIn(e.ns, 'link', 'show', wg).then(
        () => false,
        () => true,
      ));
      t++
    )
      await sleep(100);
    await nsExec(e.ns, 'wg', [
      'set',
      wg,
      'private-key',
      keyFile,
      'listen-port',
      '51820',
      'peer',
      peer.pub,
      'allowed-ips',
      `${e.peerInner}/32`,
      'endpoint',
      `${e.peerUnder}:51820`,
    ]);
    await ipIn(e.ns, 'addr', 'add', `${e.inner}/24`, 'dev', wg);
    await ipIn(e.ns, 'link', 'set', wg, 'up');
    await kernelVxlan(e.ns, e.inner, e.peerInner, wg, 42, 1370);
    await bridgeLan(e.ns, 'vx0');
  }
  return {
    procs: { 'wireguard-go-a': pids[0] ?? 0, 'wireguard-go-b': pids[1] ?? 0 },
    notes: 'wireguard-go (userspace WireGuard, wg0 MTU 1420) carrying kernel vxlan VNI 42; host MTU 1370',
  };
}

async function bridgeOnly(net: BenchNet): Promise<Running> {
  await buildBase(net, { hostMtu: 1500, hbOn: 'gb' });
  for (const ns of [net.ns.ga, net.ns.gb]) await ipIn(ns, 'addr', 'flush', 'dev', 'u0');
  await bridgeLan(net.ns.ga, 'u0');
  await bridgeLan(net.ns.gb, 'u0');
  return { procs: {}, notes: 'two bridges joined by a veth, no tunnel; host MTU 1500' };
}

export async function startScenario(name: ScenarioName, net: BenchNet, work: string): Promise<Running> {
  mkdirSync(work, { recursive: true });
  net.work = work;
  switch (name) {
    case 'connector-datagram':
      return connector(net, work, true);
    case 'connector':
      return connector(net, work);
    case 'connector-kernel-l2':
      return connector(net, work, false, true);
    case 'openvpn-tap-tcp':
      return openvpn(net, work, 'tcp');
    case 'openvpn-tap-udp':
      return openvpn(net, work, 'udp');
    case 'wireguard-go-vxlan':
      return wireguardVxlan(net, work);
    case 'kernel-vxlan':
      return vxlan(net);
    case 'bridge-only':
      return bridgeOnly(net);
  }
}

/** CPU seconds and peak RSS of a process, from /proc. */
export function procUsage(pid: number): { cpuS: number; peakRssMb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuS: ticks / 100, peakRssMb: Number(hwm?.[1] ?? 0) / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process's threads by name (/proc/<pid>/task/<tid>/comm), the main thread as 'loop':
 * how a daemon's work splits between its event loop and V8's and libuv's helper threads.
 */
export function threadUsage(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = tid === String(pid) ? 'loop' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

export async function toolVersions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[]): Promise<string> =>
    ((await exec(cmd, args, { allowFailure: true })).stdout.split('\n')[0] ?? '').trim();
  return {
    node: process.version,
    iperf3: await v('iperf3', ['--version']),
    openvpn: await v('openvpn', ['--version']),
    'wireguard-go': await v('wireguard-go', ['--version']),
    kernel: await v('uname', ['-r']),
  };
}
