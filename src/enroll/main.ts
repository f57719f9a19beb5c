// SPDX-License-Identifier: UNLICENSED
// The EST enrollment server's wiring: config file -> PEM files, registry watcher, issuance log ->
// the EST service (core) behind the HTTPS adapter. Nothing runs at import.
import { X509Certificate as NodeX509 } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { ConnectorError } from '../shared/errors.js';
import { loggerFromEnv, type Logger } from '../shared/log.js';
import { certFromPem, importPrivateKeyPem, splitPemChain, type Issuer } from '../shared/pki/x509.js';
import { openRegistryStore } from '../shared/registry/open.js';
import { describeRegistrySource, type RegistryStore } from '../shared/registry/source.js';
import { parseEstServerConfig, type EstServerConfig } from './core/config.js';
import { createEstService } from './core/est-service.js';
import { appendIssuance, readConfigDocument, readPem } from './adapters/files.js';
import { startEstHttpsServer, type EstServer } from './adapters/https-server.js';
import { serveGuardMetrics } from '../shared/net/guard-metrics.js';

export type { EstServer } from './adapters/https-server.js';

export interface EnrollServerDeps {
  log: Logger;
  /** Wall clock for certificate validity; injected so tests can issue "in the future". */
  now: () => Date;
}

/** Loads the CA material the config names and serves EST until close(). */
export async function startEnrollServer(cfg: EstServerConfig, deps: EnrollServerDeps): Promise<EstServer> {
  const log = deps.log;
  const factoryCas = cfg.factoryCaFiles.flatMap((f) => splitPemChain(readPem(f, 'factory CA')));
  if (factoryCas.length === 0) throw new ConnectorError('CK_ERR_EST', 'factoryCaFiles hold no certificate');
  const deviceCaPem = readPem(cfg.deviceCaCertFile, 'device CA certificate');
  const chainPems = cfg.deviceCaChainFile ? splitPemChain(readPem(cfg.deviceCaChainFile, 'device CA chain')) : [];
  const deviceCa: Issuer = {
    cert: certFromPem(deviceCaPem),
    privateKey: await importPrivateKeyPem(readPem(cfg.deviceCaKeyFile, 'device CA key')),
  };
  // The file backend re-stats per request; PostgreSQL keeps the registry in memory, updated by NOTIFY.
  const registry = await openRegistryStore(cfg.registry, { log });
  try {
    return await serve(cfg, deps, registry, { factoryCas, deviceCaPem, chainPems, deviceCa });
  } catch (e) {
    await registry.close();
    throw e;
  }
}

async function serve(
  cfg: EstServerConfig,
  deps: EnrollServerDeps,
  registry: RegistryStore,
  ca: { factoryCas: string[]; deviceCaPem: string; chainPems: string[]; deviceCa: Issuer },
): Promise<EstServer> {
  const { log } = deps;
  const { factoryCas, deviceCaPem, chainPems, deviceCa } = ca;
  const service = createEstService({
    factoryAnchors: factoryCas.map((p) => new NodeX509(p)),
    deviceAnchors: [new NodeX509(deviceCaPem)],
    deviceCa,
    caCerts: [new Uint8Array(deviceCa.cert.rawData), ...chainPems.map((p) => new Uint8Array(new NodeX509(p).raw))],
    certLifetimeS: cfg.certLifetimeS,
    backdateS: cfg.backdateS,
    retryAfterS: cfg.retryAfterS,
    registry: () => registry.current(),
    recordIssuance: (r) => appendIssuance(cfg.issuanceLogFile, r),
    now: deps.now,
    log,
  });
  const server = await startEstHttpsServer(
    {
      host: cfg.host,
      port: cfg.port,
      cert: readPem(cfg.tlsCertFile, 'TLS certificate'),
      key: readPem(cfg.tlsKeyFile, 'TLS key'),
      clientCas: [...factoryCas, deviceCaPem, ...chainPems],
      log,
    },
    service,
  );
  log.info('est listening', { host: cfg.host, port: server.port, registry: describeRegistrySource(cfg.registry) });
  const metrics = cfg.metrics
    ? await serveGuardMetrics({ ...cfg.metrics, services: [{ name: 'est', guard: server.guard }], log })
    : undefined;
  if (metrics) log.info('est metrics listening', { host: metrics.address.address, port: metrics.address.port });
  return {
    url: server.url,
    port: server.port,
    guard: server.guard,
    ...(metrics ? { metricsPort: metrics.address.port } : {}),
    async close() {
      await metrics?.close();
      await server.close();
      await registry.close();
    },
  };
}

/** `connector enroll-server --config FILE`: serves until SIGTERM or SIGINT, then exits 0. */
export async function runEnrollServer(o: { configFile: string }): Promise<number> {
  const file = resolve(o.configFile);
  const cfg = parseEstServerConfig(readConfigDocument(file), dirname(file));
  const log = loggerFromEnv(process.env, { component: 'est' });
  const server = await startEnrollServer(cfg, { log, now: () => new Date() });
  process.stdout.write(`enroll-server: listening on ${server.url}\n`);
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      log.info('est stopping');
      void server.close().then(resolveStop);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
