// SPDX-License-Identifier: UNLICENSED
// The agent's only wiring: `connector-agent run` and `status` (src/agent/cli.ts dispatches here). It reads
// the config and the environment, picks the real implementations (TAP, TLS tunnel, identity files, the
// OTA channel, the status socket, the system clock and timers) and hands them to core/agent.ts.
// Nothing runs at import.
import { readFileSync } from 'node:fs';
import { flag, parseCommandArgs, str } from '../shared/cli/args.js';
import { ConnectorError, UsageError } from '../shared/errors.js';
import { createLogger, LOG_LEVELS, type LogFormat, type Logger, type LogLevel } from '../shared/log.js';
import { monotonicClock, systemScheduler } from '../shared/system-time.js';
import { parseUsignPublicKey } from '../shared/usign/index.js';
import { productVersion } from '../shared/version.js';
import { attachToBridge, disableTapIpv6, readOwnAddresses } from './adapters/host-net.js';
import { fileIdentityPorts, IdentityStatusTracker, systemIdentityClock } from './adapters/identity/index.js';
import { connectDeviceMqtt } from './adapters/ota/mqtt-client.js';
import { openSlotStore } from './adapters/ota/slots.js';
import { sysupgradeRunner } from './adapters/ota/sysupgrade.js';
import { createUpdater } from './adapters/ota/updater.js';
import { DEFAULT_OS_COMPAT_VERSION, osCompatVersionOf } from './core/ota/os-compat.js';
import { runSelfTest, type SelfTestResult } from './adapters/self-test.js';
import { fetchStatus, serveStatus } from './adapters/status-socket.js';
import { openTap } from './adapters/tap.js';
import { createTunnelClient } from './adapters/tunnel-client.js';
import { startAgent } from './core/agent.js';
import { parseAgentConfig, type AgentConfig } from './core/config.js';
import { createIdentitySource } from './core/identity/source.js';
import { startOtaChannel } from './core/ota/channel.js';
import type { IdentitySource, OtaChannel, OtaContext } from './core/ports.js';
import { renderStatus, type StatusDoc } from './core/status-format.js';

const DEFAULT_CONFIG = '/etc/config/connector';

const RUN_HELP = `usage: connector-agent run [--config FILE]

Runs the Connector agent in the foreground (procd supervises it on the device).
  --config FILE   OpenWrt UCI file (default /etc/config/connector); see docs/agent-config.md
Environment: LOG_LEVEL and LOG_FORMAT override the config's log_level / log_format.`;

const STATUS_HELP = `usage: connector-agent status [--json] [--config FILE] [--socket PATH]

Prints tunnel state, RTT, counters, the MAC and neighbour tables and alarms of the running agent.
  --json          machine-readable output
  --config FILE   UCI config to find the status socket (default /etc/config/connector)
  --socket PATH   status socket path (overrides --config)`;

function loadConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot read config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseAgentConfig(text);
}

function agentLogger(config: AgentConfig, env: NodeJS.ProcessEnv): Logger {
  const envLevel = env['LOG_LEVEL'];
  const envFormat = env['LOG_FORMAT'];
  if (envLevel !== undefined && !LOG_LEVELS.includes(envLevel as LogLevel))
    throw new UsageError(`LOG_LEVEL "${envLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  if (envFormat !== undefined && envFormat !== 'json' && envFormat !== 'human')
    throw new UsageError(`LOG_FORMAT "${envFormat}" is not json or human`);
  return createLogger({
    level: (envLevel as LogLevel | undefined) ?? config.logLevel,
    format: (envFormat as LogFormat | undefined) ?? config.logFormat,
    base: { component: 'agent' },
  });
}

/** The stored identity, or first-boot enrollment from the factory block, renewed on the real clock. */
function identitySource(config: AgentConfig, log: Logger): IdentitySource {
  const clock = systemIdentityClock;
  const ilog = log.child({ part: 'identity' });
  const files = {
    identityDir: config.identityDir,
    factoryBlockPath: config.enroll.factoryBlockPath,
    factoryBlockOffset: config.enroll.factoryBlockOffset,
  };
  return createIdentitySource(
    {
      ...(config.enroll.url ? { estUrl: config.enroll.url } : {}),
      minTimeS: config.enroll.minTimeS,
      clock,
      log: ilog,
      status: new IdentityStatusTracker(clock.now),
      ports: fileIdentityPorts(files, clock, ilog),
    },
    log,
  );
}

/**
 * The OS's compat_version, read when the OTA channel starts (a sysupgrade reboots, so it is current); the
 * default when /etc/config/system is absent, as off OpenWrt (the lab), where no sysupgrade runs either.
 */
function readOsCompatVersion(file = '/etc/config/system'): string {
  try {
    return osCompatVersionOf(readFileSync(file, 'utf8'));
  } catch {
    return DEFAULT_OS_COMPAT_VERSION;
  }
}

/** MQTT 5 with the operational certificate, the A/B updater on the slot tree, sysupgrade. */
function otaChannel(config: AgentConfig, log: Logger, ctx: OtaContext, restart: (reason: string) => Promise<void>): OtaChannel {
  const o = config.ota;
  const olog = log.child({ part: 'ota' });
  const trustedKeys = o.pubkeySlots.map((f) => parseUsignPublicKey(readFileSync(f, 'utf8')));
  return startOtaChannel({
    broker: o.broker ?? '',
    log,
    scheduler: systemScheduler,
    identity: ctx.identity,
    caFor: (identityCa) => (o.caFile ? readFileSync(o.caFile, 'utf8') : identityCa),
    health: ctx.health,
    createUpdater: (serial, ca, report) =>
      createUpdater({
        serial,
        board: o.board,
        trustedKeys,
        slots: openSlotStore(o.slotsDir),
        stateDir: o.stateDir,
        report,
        healthy: async () => ctx.tunnelUp(),
        healthDeadlineMs: o.healthDeadlineMs,
        restart: (reason) => restart(`ota ${reason}`),
        sysupgrade: sysupgradeRunner(o.sysupgradeCommand, olog),
        downloadCa: ca,
        osCompatVersion: readOsCompatVersion(),
        log: olog,
      }),
    connect: (c) => connectDeviceMqtt({ url: o.broker ?? '', board: o.board, log: olog, ...c }),
  });
}

/** `connector-agent run`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { config: { type: 'string' } }, false);
  if (p.help) {
    process.stdout.write(RUN_HELP + '\n');
    return 0;
  }
  const config = loadConfig(str(p, 'config') ?? DEFAULT_CONFIG);
  const log = agentLogger(config, process.env);
  if (!config.enabled) {
    log.info('agent disabled in config (agent.enabled=0); exiting');
    return 0;
  }
  const version = productVersion();
  const superFrames = config.maxProtocol >= 2 && config.vlans.length === 0;
  let restarting: ((reason: string) => Promise<void>) | undefined;
  const restart = (reason: string): Promise<void> => restarting?.(reason) ?? Promise.resolve();
  const agent = await startAgent({
    config,
    version,
    pid: process.pid,
    log,
    clock: monotonicClock,
    scheduler: systemScheduler,
    identity: identitySource(config, log),
    // Super-frames (tunnel protocol v2, `offload`) on a plain LAN port; a VLAN trunk keeps ordinary frames.
    openTap: async () => openTap({ name: config.tapName, maxBatch: 64, log, vnetHdr: superFrames, writeThread: config.sendThread }),
    attachTap: async () => {
      // Before the link goes up (by us or by netifd): the TAP is a bridge port, not a host.
      disableTapIpv6(config.tapName, log);
      if (config.attach === 'ip') await attachToBridge(config.tapName, config.bridge);
    },
    readOwnAddresses: () => readOwnAddresses(config.bridge),
    createTunnel: (getIdentity, vlan) =>
      createTunnelClient({
        headends: config.headends,
        getIdentity,
        // A trunk VLAN's session names its VLAN; the headend's registry maps it to a segment.
        hello: { agentVersion: version, site: config.site, capabilities: ['l2', 'arp-nd-proxy', ...(vlan ? [`vlan:${vlan}`] : [])] },
        keepaliveMs: config.keepaliveMs,
        deadAfterMs: config.deadAfterMs,
        // Full jitter: a fleet that lost the same headend spreads its returns over the whole window.
        backoff: { initialMs: 250, maxMs: config.reconnectMaxMs, jitter: 1 },
        sendQueueFrames: config.sendQueueFrames,
        aqm: config.aqm,
        datagram: {
          enabled: config.datagram.enabled,
          sendThread: config.sendThread,
          lanes: config.datagram.lanes,
          ...(config.datagram.port ? { port: config.datagram.port } : {}),
        },
        maxProtocol: config.maxProtocol,
        offload: superFrames,
        log: log.child(vlan ? { part: 'tunnel', vlan } : { part: 'tunnel' }),
      }),
    serveStatus: (snapshot) => serveStatus(config.statusSocket, snapshot),
    ...(config.ota.broker ? { startOta: (ctx: OtaContext) => otaChannel(config, log, ctx, restart) } : {}),
  });
  return new Promise<number>((resolve) => {
    // An OTA switch or rollback: the updater has persisted its phase, and this process must not go on
    // with it. Stop cleanly and exit; procd starts the binary `current` points to, which resumes the job.
    restarting = async (reason) => {
      log.info('restarting', { reason });
      setTimeout(() => process.exit(0), 5_000).unref();
      await agent.stop().catch(() => undefined);
      process.exit(0);
    };
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info('shutting down', { signal: sig });
      agent.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    agent.up.catch((e: unknown) => {
      // procd restarts us; the log says why (and the status socket said so while it was up).
      log.error('agent failed', { error: e instanceof Error ? e.message : String(e) });
      resolve(1);
    });
  });
}

/** `connector-agent status`: asks the running agent over its status socket. */
export async function status(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { json: { type: 'boolean' }, config: { type: 'string' }, socket: { type: 'string' } }, false);
  if (p.help) {
    process.stdout.write(STATUS_HELP + '\n');
    return 0;
  }
  const socket = str(p, 'socket') ?? parseAgentConfig(readFileSync(str(p, 'config') ?? DEFAULT_CONFIG, 'utf8')).statusSocket;
  const doc = (await fetchStatus(socket)) as StatusDoc;
  process.stdout.write((flag(p, 'json') ? JSON.stringify(doc, null, 2) : renderStatus(doc)) + '\n');
  return 0;
}

/** `connector-agent --self-test`: this binary's runtime (TAP addon, crypto, TLS 1.3). */
export function selfTest(): SelfTestResult {
  return runSelfTest();
}
