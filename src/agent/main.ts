// SPDX-License-Identifier: UNLICENSED
// `connector-agent run --config FILE`: the only place that knows which implementations are real.
import { readFileSync } from 'node:fs';
import { parseCommandArgs, str } from '../shared/cli/args.js';
import { ConnectorError, UsageError } from '../shared/errors.js';
import { createLogger, LOG_LEVELS, type LogFormat, type LogLevel } from '../shared/log.js';
import { productVersion } from '../shared/version.js';
import { attachToBridge, readOwnAddresses } from './adapters/host-net.js';
import { serveStatus } from './adapters/status-socket.js';
import { openTap } from './adapters/tap.js';
import { createTunnelClient } from './adapters/tunnel-client.js';
import { startAgent, type OtaContext } from './core/agent.js';
import { parseAgentConfig } from './core/config.js';
import { createL2Decider } from './core/l2-decider.js';
import { monotonicClock } from './core/ports.js';
import { enrollmentIdentitySource } from './adapters/identity/source.js';
import { startOta } from './adapters/ota/channel.js';

const HELP = `usage: connector-agent run [--config FILE]

Runs the Connector agent in the foreground (procd supervises it on the device).
  --config FILE   OpenWrt UCI file (default /etc/config/connector); see docs/agent-config.md
Environment: LOG_LEVEL and LOG_FORMAT override the config's log_level / log_format.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { config: { type: 'string' } }, false);
  if (p.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const configPath = str(p, 'config') ?? '/etc/config/connector';
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot read config ${configPath}: ${(e as Error).message}`, { cause: e });
  }
  const config = parseAgentConfig(text);
  const env = process.env;
  const envLevel = env['LOG_LEVEL'];
  const envFormat = env['LOG_FORMAT'];
  if (envLevel !== undefined && !LOG_LEVELS.includes(envLevel as LogLevel)) throw new UsageError(`LOG_LEVEL "${envLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  if (envFormat !== undefined && envFormat !== 'json' && envFormat !== 'human') throw new UsageError(`LOG_FORMAT "${envFormat}" is not json or human`);
  const log = createLogger({
    level: (envLevel as LogLevel | undefined) ?? config.logLevel,
    format: (envFormat as LogFormat | undefined) ?? config.logFormat,
    base: { component: 'agent' },
  });
  if (!config.enabled) {
    log.info('agent disabled in config (agent.enabled=0); exiting');
    return 0;
  }
  const version = productVersion();
  const clock = monotonicClock;
  let restarting: ((reason: string) => Promise<void>) | undefined;
  const agent = await startAgent({
    config,
    version,
    log,
    clock,
    identity: enrollmentIdentitySource(config, log),
    openTap: async () => openTap({ name: config.tapName, maxBatch: 64, log }),
    attachTap: async () => {
      if (config.attach === 'ip') await attachToBridge(config.tapName, config.bridge);
    },
    readOwnAddresses: () => readOwnAddresses(config.bridge),
    createTunnel: (getIdentity) =>
      createTunnelClient({
        headends: config.headends,
        getIdentity,
        hello: { agentVersion: version, site: config.site, capabilities: ['l2', 'arp-nd-proxy'] },
        keepaliveMs: config.keepaliveMs,
        deadAfterMs: config.deadAfterMs,
        backoff: { initialMs: 250, maxMs: config.reconnectMaxMs, jitter: 0.5 },
        sendQueueFrames: config.sendQueueFrames,
        log: log.child({ part: 'tunnel' }),
      }),
    createDecider: () => createL2Decider(config.l2, clock.now()),
    serveStatus: (snapshot) => serveStatus(config.statusSocket, snapshot),
    ...(config.ota.broker
      ? {
          startOta: (ctx: OtaContext) =>
            startOta({ config, log, ...ctx, restart: (reason) => restarting?.(reason) ?? Promise.resolve() }),
        }
      : {}),
  });
  return new Promise<number>((resolve) => {
    // An OTA switch or rollback: stop cleanly and exit; procd starts the binary `current` points to.
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
