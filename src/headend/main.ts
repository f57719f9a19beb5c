// SPDX-License-Identifier: UNLICENSED
// The headend's only wiring (`connector headend`, `connector audit`): reads the config and the registry,
// opens the real sockets (VXLAN, the TLS listener, metrics), the audit file and the registry watch, and
// hands them to core/headend.ts; reloads the registry on SIGHUP, stops on SIGTERM/SIGINT. Also the audit
// log's export and verification. Nothing runs at import.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { ConfigError, ConnectorError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { openRegistryStore } from '../shared/registry/open.js';
import { describeRegistrySource, type RegistryStore } from '../shared/registry/source.js';
import { monotonicClock, systemScheduler, systemWallClock } from '../shared/system-time.js';
import { feedSession, tlsTransport } from '../shared/tunnel/tls-transport.js';
import { openAuditLog } from './adapters/audit-log.js';
import { readAuditFile, verifyAuditFile, type FileVerdict, type VerifyFileOptions } from '../shared/audit/files.js';
import { openMetricsServer, type MetricsServer } from './adapters/metrics-server.js';
import { openTlsListener, refuseConnection } from './adapters/tls-listener.js';
import { watchLoopHealth } from './adapters/loop-health.js';
import { nativeMemoryTrim } from './adapters/memory-trim.js';
import { openDatagramServer, type DatagramServer } from './adapters/datagram-server.js';
import { MemoryReturn } from './core/memory-return.js';
import { attachEvpnFeed } from './adapters/evpn-feed.js';
import { openVxlanSocket } from './adapters/vxlan-socket.js';
import { auditToCsv, auditToJsonl } from '../shared/audit/chain.js';
import { parseHeadendConfigText, type HeadendConfig } from './core/config.js';
import { HeadendCore } from './core/headend.js';
import { reconnectWindowMs } from './core/pacing.js';

export { handshakeRefusalReason } from './adapters/tls-listener.js';

export interface Headend {
  readonly tunnelAddress: AddressInfo;
  readonly vxlanAddress: AddressInfo;
  /** The datagram channel's UDP port; null when it is off. */
  readonly datagramPort: number | null;
  readonly metricsAddress: AddressInfo | null;
  /** Re-reads the registry (SIGHUP): new segments and VTEPs apply, refused devices are disconnected. */
  reload(): Promise<void>;
  renderMetrics(): string;
  sessions(): readonly { id: string; serial: string; tenant: string; vni: number; vlan: number; state: string }[];
  close(): Promise<void>;
}

export interface HeadendDeps {
  log: Logger;
  now?: () => Date;
  /** Poll interval for registry file changes, ms (0 disables; SIGHUP still works). PostgreSQL notifies instead. */
  registryPollMs?: number;
}

/** How long a session that said bye may linger half-closed before its socket is destroyed. */
const BYE_GRACE_MS = 2_000;
/**
 * How long a stopping headend waits for its peers to close after the byes. The byes are written when
 * the stop begins, so this bounds only the wait for peers slow to answer, not the delivery of the bye.
 */
const SHUTDOWN_GRACE_MS = 250;

export function loadHeadendConfig(file: string): HeadendConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, `cannot be read: ${errorMessage(e)}`);
  }
  return parseHeadendConfigText(text, path, dirname(path));
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot read ${what} ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** The kernel silently caps a listen backlog at net.core.somaxconn: say so when it would. */
function warnIfSomaxconnBelow(backlog: number, log: Logger): void {
  let max = NaN;
  try {
    max = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return;
  }
  if (max < backlog) {
    log.warn('listen backlog capped by the kernel', { backlog, somaxconn: max, fix: `sysctl -w net.core.somaxconn=${backlog}` });
  }
}

/** Starts a headend with the real sockets; resolves once it listens. */
export async function startHeadend(config: HeadendConfig, deps: HeadendDeps): Promise<Headend> {
  const pollMs = deps.registryPollMs ?? 2_000;
  const store = await openRegistryStore(config.registry, { log: deps.log, ...(pollMs > 0 ? { filePollMs: pollMs } : {}) });
  try {
    return await startWithRegistry(config, deps, store, pollMs);
  } catch (e) {
    await store.close();
    throw e;
  }
}

async function startWithRegistry(config: HeadendConfig, deps: HeadendDeps, store: RegistryStore, pollMs: number): Promise<Headend> {
  const { log } = deps;
  const auditLog = openAuditLog(
    config.auditLogFile,
    deps.now ?? (() => new Date()),
    (p) => log.error('alarm raised: audit log problem', { problem: p }),
    {
      sinkFile: config.auditSinkFile ?? undefined,
      rotateBytes: config.auditRotateMiB * 1024 * 1024,
    },
  );
  // A checkpoint a minute while records come: a crash leaves at most a minute unsigned (its next start signs it).
  const checkpointTimer = setInterval(() => auditLog.checkpoint(), 60_000);
  checkpointTimer.unref();
  const registry = await store.reload();
  const tls = {
    key: readPem(config.tls.keyFile, 'headend key (tls.key)'),
    cert: readPem(config.tls.certFile, 'headend certificate (tls.cert)'),
    deviceCa: readPem(config.tls.deviceCaFile, 'device CA bundle (tls.deviceCa)'),
  };
  // Before the VXLAN socket: a refused datagram port must leave nothing open behind the error.
  const datagram = await openDatagram(config, log);
  const vxlan = await openVxlanSocket({
    localAddress: config.vxlan.localAddress,
    port: config.vxlan.port,
    vtepPort: config.vxlan.vtepPort,
    log,
  }).catch(async (e: unknown) => {
    await datagram?.close();
    throw e;
  });
  const core = new HeadendCore(config, registry, {
    ...(datagram ? { datagram } : {}),
    log,
    audit: (event, fields) => auditLog.append(event, fields),
    clock: monotonicClock,
    wallClock: systemWallClock,
    scheduler: systemScheduler,
    vtep: vxlan,
  });
  vxlan.receiveInto(core.forwarder, (reason) => core.countDrop(reason));
  const evpn = config.evpn ? attachEvpnFeed(core.forwarder, config.evpn, log) : null;

  // A listener that cannot open (a port taken) must not leave the sockets already open holding the
  // process: the error is reported and the process exits.
  const opened: { close(): Promise<void> }[] = [vxlan, ...(datagram ? [datagram] : [])];
  const undo = async (e: unknown): Promise<never> => {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    throw e;
  };
  const listener = await openTlsListener({
    host: config.listen.host,
    port: config.listen.port,
    ...tls,
    handshakeTimeoutMs: config.session.helloTimeoutMs,
    backlog: config.listen.backlog,
    maxConnections: config.listen.maxConnections,
    maxPerSource: config.listen.maxPerSource,
    pacing: config.listen,
    ticketKeysFile: config.tls.ticketKeysFile,
    ticketLifetimeS: config.tls.ticketLifetimeS,
    onHandshake: (resumed) => core.metrics.inc('connector_headend_handshakes_total', { resumed: resumed ? 'yes' : 'no' }),
    log,
    onRefused: (reason) => core.refuse(reason),
    maxProtocol: config.tunnel.maxProtocol,
    onPeer: (socket, peer, protocol) => {
      const r = core.connect(peer, tlsTransport(socket, { endGraceMs: BYE_GRACE_MS, probeUnread: true }));
      if (!r.ok) {
        refuseConnection(socket, r.reason);
        return;
      }
      feedSession(socket, r.session, {
        error: (e) => {
          log.debug('session socket error', { remote: peer.remote, serial: peer.serial, error: e.message });
          return 'socket-error';
        },
        end: 'peer-closed',
        close: 'peer-closed',
      });
      r.session.open(protocol);
    },
  }).catch(undo);
  opened.push(listener);

  let metrics: MetricsServer | null = null;
  if (config.metrics)
    metrics = await openMetricsServer(
      config.metrics.host,
      config.metrics.port,
      (detail) => core.renderMetrics(detail),
      log,
      () => core.sessions(),
    ).catch(undo);

  const reload = (why: string): Promise<void> =>
    store.reload().then(
      (reg) => core.reload(() => reg, why),
      (e: unknown) =>
        core.reload(() => {
          throw e;
        }, why),
    );
  const polled = config.registry.kind === 'file';
  const stopWatch = !polled || pollMs > 0 ? store.watch(() => void reload(polled ? 'file-changed' : 'registry-notify')) : () => {};
  // The database can drop under a running headend: the gauge and the store's log lines say so while the
  // last good registry keeps serving admissions.
  const publishRegistry = (): void => {
    const st = store.status();
    core.metrics.set('connector_headend_registry_connected', {}, st.connected ? 1 : 0);
  };
  publishRegistry();
  const registryTimer = setInterval(publishRegistry, 1_000);
  registryTimer.unref();

  // The process's own memory, for operators and the load tool: RSS against the JS heap tells a leak in
  // our objects from memory the allocator keeps.
  const publishMemory = (): void => {
    const m = process.memoryUsage();
    const kinds = { rss: m.rss, heap_used: m.heapUsed, heap_total: m.heapTotal, external: m.external, array_buffers: m.arrayBuffers };
    for (const [kind, bytes] of Object.entries(kinds)) core.metrics.set('connector_headend_memory_bytes', { kind }, bytes);
  };
  const publishDatagram = (): void => {
    if (!datagram) return;
    const t = datagram.totals();
    core.metrics.set('connector_headend_datagram_sessions', {}, t.onDatagrams);
    core.metrics.set('connector_headend_datagrams_total', { direction: 'in' }, t.datagramsIn);
    core.metrics.set('connector_headend_datagrams_total', { direction: 'out' }, t.datagramsOut);
    const drops: Record<string, number> = { ...datagram.drops };
    for (const [reason, n] of Object.entries(t.sessionDrops)) drops[reason] = (drops[reason] ?? 0) + n;
    for (const [reason, n] of Object.entries(drops)) core.metrics.set('connector_headend_datagram_drops_total', { reason }, n);
  };
  publishMemory();
  const memoryTimer = setInterval(() => {
    publishMemory();
    publishDatagram();
  }, 2_000);
  memoryTimer.unref();
  const returnMemory = config.returnMemory
    ? memoryReturnLoop(
        () => core.sessions().length,
        log,
        (released) => core.metrics.inc('connector_headend_memory_trims_total', { released: released ? 'yes' : 'no' }),
      )
    : undefined;

  const loop = watchLoopHealth({
    windowMs: 10_000,
    alarmP99Ms: 100,
    log,
    publish: (p99Ms, maxMs, alarm) => {
      core.metrics.set('connector_headend_event_loop_delay_seconds', { quantile: '0.99' }, p99Ms / 1_000);
      core.metrics.set('connector_headend_event_loop_delay_seconds', { quantile: '1' }, maxMs / 1_000);
      core.metrics.set('connector_headend_event_loop_delayed', {}, alarm ? 1 : 0);
    },
  });
  warnIfSomaxconnBelow(config.listen.backlog, log);

  const tunnelAddress = listener.address;
  const instance = config.instance ?? hostname();
  core.metrics.set('connector_headend_info', { instance, version: config.headendVersion }, 1);
  core.audit('headend-start', { remote: `${tunnelAddress.address}:${tunnelAddress.port}`, headend: instance });
  log.info('headend listening', {
    instance,
    tunnel: `${tunnelAddress.address}:${tunnelAddress.port}`,
    vxlan: `${config.vxlan.localAddress}:${vxlan.address.port}`,
    metrics: metrics ? `${metrics.address.address}:${metrics.address.port}` : 'off',
    datagram: datagram ? `${config.datagram?.host ?? ''}:${datagram.port}` : 'off',
    registry: describeRegistrySource(config.registry),
  });

  return {
    tunnelAddress,
    vxlanAddress: vxlan.address,
    datagramPort: datagram?.port ?? null,
    metricsAddress: metrics?.address ?? null,
    reload: () => reload('sighup'),
    renderMetrics: () => core.renderMetrics(),
    sessions: () => core.sessions(),
    async close() {
      clearInterval(checkpointTimer);
      evpn?.();
      loop.stop();
      clearInterval(returnMemory);
      clearInterval(memoryTimer);
      stopWatch();
      clearInterval(registryTimer);
      // The fleet is asked to spread its return over the time the accept rate needs for all of it.
      core.closeAll('headend-shutdown', reconnectWindowMs(core.sessions().length, config.listen.acceptPerS));
      await listener.close(SHUTDOWN_GRACE_MS);
      await metrics?.close();
      await vxlan.close();
      await datagram?.close();
      // The disconnects just queued are committed and signed before the process goes: a clean stop
      // leaves no unsigned tail.
      try {
        await auditLog.close();
      } catch (e) {
        log.error('audit checkpoint at shutdown failed', { error: errorMessage(e) });
      }
      await store.close();
    },
  };
}

/** `connector headend`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runHeadend(configFile: string, log: Logger): Promise<number> {
  const config = loadHeadendConfig(configFile);
  // Handlers go in before the listeners open: a signal sent as soon as "headend listening" is logged
  // must not hit Node's default action (SIGHUP would terminate the process).
  let headend: Headend | null = null;
  let stopSignal: string | null = null;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((r) => (wake = r));
  const onHup = (): void => void headend?.reload();
  const onStop = (signal: string) => (): void => {
    stopSignal ??= signal;
    wake();
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  process.on('SIGHUP', onHup);
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  try {
    headend = await startHeadend(config, { log });
    await stopped;
    log.info('headend stopping', { signal: stopSignal ?? '' });
    await headend.close();
  } finally {
    process.removeListener('SIGHUP', onHup);
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  }
  return 0;
}

/** `connector audit export`: every record with its own hash, as CSV (RFC 4180) or JSON Lines. */
export function exportAuditLog(file: string, format: 'csv' | 'jsonl'): string {
  const f = readAuditFile(file);
  return format === 'csv' ? auditToCsv(f.lines) : auditToJsonl(f.lines);
}

/** `connector audit verify`: the hash chain, and the head pointer when there is one. */
export function verifyAuditLog(file: string, o: VerifyFileOptions = {}): FileVerdict {
  return verifyAuditFile(file, o);
}

/** Every 2 s: once the session count has settled after a large drop, freed native memory goes back to the kernel. */
function memoryReturnLoop(sessions: () => number, log: Logger, counted: (released: boolean) => void): NodeJS.Timeout | undefined {
  const trim = nativeMemoryTrim();
  if (trim === null) return undefined;
  const policy = new MemoryReturn();
  let running = false;
  const timer = setInterval(() => {
    if (running || !policy.tick(Date.now(), sessions())) return;
    running = true;
    const before = process.memoryUsage.rss();
    void trim().then(({ released, gcMs, trimMs }) => {
      running = false;
      counted(released);
      const mb = (b: number): number => Math.round(b / 1e5) / 10;
      log.info('native memory returned after a session drop', {
        rssMbBefore: mb(before),
        rssMbAfter: mb(process.memoryUsage.rss()),
        gcMs: +gcMs.toFixed(1),
        trimMs: +trimMs.toFixed(1),
        sessions: sessions(),
      });
    });
  }, 2_000);
  timer.unref();
  return timer;
}

/**
 * The datagram channel's socket. Its port defaults to the TLS listener's number: when that UDP port is
 * taken and no port was configured, the headend still starts, TLS only, and says so; a configured port
 * that cannot be bound is a start-up error like any listener's.
 */
async function openDatagram(config: HeadendConfig, log: Logger): Promise<DatagramServer | null> {
  const d = config.datagram;
  if (d === null) return null;
  try {
    return await openDatagramServer({ host: d.host, port: d.port, log, now: () => monotonicClock.now() });
  } catch (e) {
    if (d.portExplicit) throw e;
    log.warn('datagram channel off: its default port is taken', {
      udp: `${d.host}:${d.port}`,
      error: errorMessage(e),
      fix: 'set datagram.port, or datagram.enabled false',
    });
    return null;
  }
}
