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
import { openAuditLog, type AuditLog } from './adapters/audit-log.js';
import { workPacer } from './adapters/work-pacer.js';
import { openKernelSwitch, type KernelSwitch } from './adapters/kernel-switch.js';
import { auditToPrimary, forkWorkers, headendWorkerIndex, isHeadendWorker, serveWorker } from './adapters/workers.js';
import { applySegmentChange, SegmentBook } from './core/segment-changes.js';
import type { Registry } from '../shared/registry/registry.js';
import { headendMetrics } from './core/metrics.js';
import { mergeExpositions } from './core/metrics-merge.js';
import { loadTapAddon } from '../shared/native/addon.js';
import { readAuditFile, verifyAuditFile, type FileVerdict, type VerifyFileOptions } from '../shared/audit/files.js';
import { openMetricsServer, type MetricsServer } from './adapters/metrics-server.js';
import { openTlsListener, refuseConnection } from './adapters/tls-listener.js';
import { watchLoopHealth } from './adapters/loop-health.js';
import { memoryReturnLoop } from './adapters/memory-trim.js';
import { openDatagramServer, type DatagramServer } from './adapters/datagram-server.js';
import { attachEvpnFeed } from './adapters/evpn-feed.js';
import { openVxlanSocket } from './adapters/vxlan-socket.js';
import { reportFabricGro } from './adapters/fabric-gro.js';
import { nativeInetSum } from '../shared/native/inet-sum.js';
import { auditToCsv, auditToJsonl } from '../shared/audit/chain.js';
import { parseHeadendConfigText, type HeadendConfig } from './core/config.js';
import { HeadendCore } from './core/headend.js';
import { reconnectWindowMs, workerShare } from './core/pacing.js';

export { handshakeRefusalReason } from './adapters/tls-listener.js';

export interface Headend {
  readonly tunnelAddress: AddressInfo;
  readonly vxlanAddress: AddressInfo;
  /** The datagram channel's UDP port; null when it is off. */
  readonly datagramPort: number | null;
  readonly metricsAddress: AddressInfo | null;
  /** Re-reads the registry (SIGHUP): new segments and VTEPs apply, refused devices are disconnected. */
  reload(): Promise<void>;
  renderMetrics(detail?: 'tenant' | 'segment'): string;
  /** renderMetrics spread over turns of the loop, as the metrics endpoint serves it. */
  scrapeMetrics(detail?: 'tenant' | 'segment'): Promise<string>;
  sessions(): readonly { id: string; serial: string; tenant: string; vni: number; vlan: number; state: string }[];
  /**
   * Says bye to every session, commits the audit and closes everything. `exiting`: the process exits
   * next, so connections still open after the shutdown grace are left for the exit to close.
   */
  close(o?: { exiting?: boolean }): Promise<void>;
}

export interface HeadendDeps {
  log: Logger;
  /** This process is worker N (1..) of a headend of several: audit goes to the primary, which also serves metrics. */
  worker?: number;
  now?: () => Date;
  /** Poll interval for registry file changes, ms (0 disables; SIGHUP still works). PostgreSQL notifies instead. */
  registryPollMs?: number;
}

/** How long a session that said bye may linger half-closed before its socket is destroyed. */
const BYE_GRACE_MS = 2_000;
/**
 * How long a stopping headend waits after the byes: for its peers to close (a headend that goes on, as a
 * worker told to stop), or for the byes to reach the kernel (one whose process exits next). Either way a
 * peer that stopped reading holds the stop no longer than this.
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

/** The audit file and its checkpoint a minute (a crash leaves at most a minute unsigned; the next start signs it). */
function openAudit(config: HeadendConfig, deps: HeadendDeps): { log: AuditLog; close(): Promise<void> } {
  const auditLog = openAuditLog(
    config.auditLogFile,
    deps.now ?? (() => new Date()),
    (p) => deps.log.error('alarm raised: audit log problem', { problem: p }),
    { sinkFile: config.auditSinkFile ?? undefined, rotateBytes: config.auditRotateMiB * 1024 * 1024 },
  );
  const timer = setInterval(() => auditLog.checkpoint(), 60_000);
  timer.unref();
  return {
    log: auditLog,
    async close() {
      clearInterval(timer);
      // The disconnects just queued are committed and signed before the process goes: no unsigned tail.
      await auditLog.close().catch((e: unknown) => deps.log.error('audit checkpoint at shutdown failed', { error: errorMessage(e) }));
    },
  };
}

/** The kernel engine's switch: worker N names its ports with N; the only or primary process owns the devices. */
function openKernelL2(config: HeadendConfig, log: Logger, worker: number): Promise<KernelSwitch> {
  const { prefix } = config.l2;
  const { localAddress, port } = config.vxlan;
  return openKernelSwitch({ prefix, localAddress, port, ageMs: config.mac.ageMs, addon: loadTapAddon(), log, worker, owner: worker === 0 });
}

async function startWithRegistry(config: HeadendConfig, deps: HeadendDeps, store: RegistryStore, pollMs: number): Promise<Headend> {
  const { log } = deps;
  const audit = deps.worker ? null : openAudit(config, deps);
  const registry = await store.reload();
  const tls = {
    key: readPem(config.tls.keyFile, 'headend key (tls.key)'),
    cert: readPem(config.tls.certFile, 'headend certificate (tls.cert)'),
    deviceCa: readPem(config.tls.deviceCaFile, 'device CA bundle (tls.deviceCa)'),
  };
  // Before the VXLAN socket: a refused datagram port must leave nothing open behind the error.
  const datagram = await openDatagram(config, log, deps.worker ?? 0);
  const kernel = config.l2.engine === 'kernel';
  const l2 = await (
    kernel ? openKernelL2(config, log, deps.worker ?? 0) : openVxlanSocket({ ...config.vxlan, sendThread: config.sendThreads, log })
  ).catch(async (e: unknown) => {
    await datagram?.close();
    throw e;
  });
  if (!deps.worker) reportFabricGro(config.vxlan.localAddress, log);
  const inetSum = kernel ? undefined : nativeInetSum(log);
  const core = new HeadendCore(config, registry, {
    ...(datagram ? { datagram } : {}),
    ...(inetSum ? { inetSum } : {}),
    ...('settled' in l2 ? { l2 } : { vtep: l2 }),
    log,
    audit: (event, fields) => (audit ? audit.log.append(event, fields) : auditToPrimary(event, fields)),
    clock: monotonicClock,
    wallClock: systemWallClock,
    scheduler: systemScheduler,
  });
  if ('receiveInto' in l2 && core.forwarder) l2.receiveInto(core.forwarder, (reason) => core.countDrop(reason));
  const evpn = config.evpn && core.forwarder ? attachEvpnFeed(core.forwarder, config.evpn, log) : null;
  const vxlanAddress: AddressInfo =
    'address' in l2 ? l2.address : { address: config.vxlan.localAddress, port: config.vxlan.port, family: 'IPv4' };

  // A listener that cannot open (a port taken) must not leave the sockets already open holding the
  // process: the error is reported and the process exits.
  const opened: { close(): Promise<void> }[] = [l2, ...(datagram ? [datagram] : [])];
  const undo = async (e: unknown): Promise<never> => {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    throw e;
  };
  const listen = workerShare(config.listen, deps.worker ? config.workers : 1);
  // Admissions and closes that arrive in crowds share one budget per turn of the loop.
  const paced = workPacer();
  const listener = await openTlsListener({
    host: config.listen.host,
    port: config.listen.port,
    ...tls,
    handshakeTimeoutMs: config.session.helloTimeoutMs,
    backlog: config.listen.backlog,
    maxConnections: listen.maxConnections,
    maxPerSource: listen.maxPerSource,
    pacing: listen,
    defer: paced.defer,
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
      feedSession(
        socket,
        r.session,
        {
          error: (e) => {
            log.debug('session socket error', { remote: peer.remote, serial: peer.serial, error: e.message });
            return 'socket-error';
          },
          end: 'peer-closed',
          close: 'peer-closed',
        },
        paced.defer,
      );
      r.session.open(protocol);
    },
  }).catch(undo);
  opened.push(listener);

  let metrics: MetricsServer | null = null;
  if (config.metrics && !deps.worker)
    metrics = await openMetricsServer(
      config.metrics.host,
      config.metrics.port,
      (detail) => core.scrapeMetrics(detail),
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
    core.metrics.set('connector_headend_datagram_send_drops_total', {}, t.sendDrops);
    core.metrics.set('connector_headend_datagram_bundles_total', {}, t.bundles);
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
        () => listener.admitting,
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
  // A worker's start is its primary's, which records it once.
  if (!deps.worker) core.audit('headend-start', { remote: `${tunnelAddress.address}:${tunnelAddress.port}`, headend: instance });
  log.info(deps.worker ? 'headend worker listening' : 'headend listening', {
    instance,
    tunnel: `${tunnelAddress.address}:${tunnelAddress.port}`,
    vxlan: `${config.vxlan.localAddress}:${vxlanAddress.port}`,
    metrics: metrics ? `${metrics.address.address}:${metrics.address.port}` : 'off',
    datagram: datagram ? `${config.datagram?.host ?? ''}:${datagram.port}` : 'off',
    registry: describeRegistrySource(config.registry),
    l2: config.l2.engine,
    sendThreads: config.sendThreads,
    ...(deps.worker ? { pid: process.pid } : {}),
  });

  return {
    tunnelAddress,
    vxlanAddress,
    datagramPort: datagram?.port ?? null,
    metricsAddress: metrics?.address ?? null,
    reload: () => reload('sighup'),
    renderMetrics: (detail) => core.renderMetrics(detail),
    scrapeMetrics: (detail) => core.scrapeMetrics(detail),
    sessions: () => core.sessions(),
    async close(o) {
      evpn?.();
      loop.stop();
      clearInterval(returnMemory);
      clearInterval(memoryTimer);
      stopWatch();
      clearInterval(registryTimer);
      // The fleet is asked to spread its return over the time the accept rate needs for all of it.
      const t0 = performance.now();
      const sessions = core.sessions().length;
      core.closeAll('headend-shutdown', reconnectWindowMs(sessions, listen.acceptPerS), o?.exiting);
      const byesMs = performance.now() - t0;
      const done = async (p: Promise<void> | undefined): Promise<number> => (await p, performance.now() - t0);
      // Every session's record is queued now (a handshake that completes from here on is not admitted):
      // the audit commits them and its closing checkpoint while the byes leave, instead of after the
      // grace, behind thousands of sockets' close events. Exiting, the peers' answers are not even read.
      const [sentMs, auditMs] = await Promise.all([
        done(listener.close(SHUTDOWN_GRACE_MS, o?.exiting)),
        done(audit?.close()),
        metrics?.close(),
        store.close(),
      ]);
      // Where a slow stop went: the byes (and each session's record and log line), their leaving the
      // socket buffers, the audit's last commit and checkpoint.
      log.info('sessions closed', { sessions, byesMs: Math.round(byesMs), sentMs: Math.round(sentMs), auditMs: Math.round(auditMs) });
      await l2.close();
      await datagram?.close();
    },
  };
}

/**
 * The primary of a headend of several workers: owns the audit file, the segments' kernel devices and
 * the metrics endpoint; the workers (adapters/workers.ts) own the sessions.
 */
export async function startPrimary(config: HeadendConfig, deps: HeadendDeps): Promise<Headend> {
  const { log } = deps;
  const store = await openRegistryStore(config.registry, { log, filePollMs: deps.registryPollMs ?? 2_000 });
  const audit = openAudit(config, deps);
  const l2 = await openKernelL2(config, log, 0);
  const book = new SegmentBook();
  const apply = (reg: Registry, all = false): void => applySegmentChange(l2, book.change(reg, Date.now(), all));
  apply(await store.reload(), true);
  // The workers attach their ports to bridges that must exist first.
  await l2.settled();
  const stopWatch = store.watch(
    () => void store.reload().then(apply, (e: unknown) => log.error('registry reload failed', { error: errorMessage(e) })),
  );
  const pool = forkWorkers(config.workers, log, (event, fields) => audit.log.append(event, fields));
  const own = headendMetrics();
  const render = async (detail: 'tenant' | 'segment'): Promise<string> => {
    const parts = await pool.ask('metrics', detail);
    own.set('connector_headend_workers', {}, pool.live);
    return mergeExpositions([
      { worker: null, text: own.render() },
      ...parts.map((p) => ({ worker: String(p.worker), text: String(p.value) })),
    ]);
  };
  const sessions = async (): Promise<unknown[]> => (await pool.ask('sessions')).flatMap((p) => (Array.isArray(p.value) ? p.value : []));
  let metrics: MetricsServer | null = null;
  try {
    const { tunnel, datagramPorts } = await pool.ready;
    if (config.metrics) metrics = await openMetricsServer(config.metrics.host, config.metrics.port, render, log, sessions);
    const instance = config.instance ?? hostname();
    audit.log.append('headend-start', { remote: `${tunnel.address}:${tunnel.port}`, headend: instance });
    log.info('headend listening', {
      instance,
      tunnel: `${tunnel.address}:${tunnel.port}`,
      vxlan: `${config.vxlan.localAddress}:${config.vxlan.port}`,
      metrics: metrics ? `${metrics.address.address}:${metrics.address.port}` : 'off',
      datagram: datagramPorts.join(','),
      registry: describeRegistrySource(config.registry),
      l2: config.l2.engine,
      workers: config.workers,
    });
    return {
      tunnelAddress: tunnel,
      vxlanAddress: { address: config.vxlan.localAddress, port: config.vxlan.port, family: 'IPv4' },
      datagramPort: datagramPorts[0] ?? null,
      metricsAddress: metrics?.address ?? null,
      reload: async () => {
        apply(await store.reload());
        pool.reload();
      },
      renderMetrics: () => own.render(),
      scrapeMetrics: render,
      sessions: () => [],
      async close(o) {
        stopWatch();
        await pool.stop(o?.exiting);
        await metrics?.close();
        await l2.close();
        await audit.close();
        await store.close();
      },
    };
  } catch (e) {
    await pool.stop();
    await Promise.all([metrics?.close(), l2.close(), audit.close(), store.close()]);
    throw e;
  }
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
    const worker = isHeadendWorker() ? headendWorkerIndex() : 0;
    if (worker > 0) {
      // A worker stops when its primary says so (or is gone), not on a signal the whole group received.
      const wlog = log.child({ worker });
      const h = await startHeadend(config, { log: wlog, worker });
      await serveWorker(
        { scrapeMetrics: (d) => h.scrapeMetrics(d), sessions: () => h.sessions(), reload: () => h.reload(), close: (o) => h.close(o) },
        h.tunnelAddress,
        h.datagramPort,
        wlog,
      );
      return 0;
    }
    headend = config.workers > 1 ? await startPrimary(config, { log }) : await startHeadend(config, { log });
    await stopped;
    log.info('headend stopping', { signal: stopSignal ?? '' });
    const t0 = performance.now();
    // The command exits once this returns (src/cli/commands/headend.ts).
    await headend.close({ exiting: true });
    log.info('headend stopped', { ms: Math.round(performance.now() - t0) });
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

/**
 * The datagram channel's socket. Its port defaults to the TLS listener's number: when that UDP port is
 * taken and no port was configured, the headend still starts, TLS only, and says so; a configured port
 * that cannot be bound is a start-up error like any listener's.
 */
async function openDatagram(config: HeadendConfig, log: Logger, worker: number): Promise<DatagramServer | null> {
  const d = config.datagram;
  if (d === null) return null;
  // Each worker has its own UDP socket: worker N takes the port N-1 above the configured one.
  const port = d.port === 0 || worker === 0 ? d.port : d.port + worker - 1;
  try {
    return await openDatagramServer({
      host: d.host,
      port,
      log,
      sendThread: config.sendThreads,
      maxLanes: d.lanes,
      now: () => monotonicClock.now(),
    });
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
