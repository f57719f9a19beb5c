// SPDX-License-Identifier: UNLICENSED
// The headend: a TLS 1.3 server that admits Connectors by their client certificate and the registry,
// bridges each admitted session into its segment, and exchanges the segment's frames with the tenant's
// VTEPs as VXLAN over one UDP socket. Also serves Prometheus metrics and writes the audit log.
import { randomBytes, X509Certificate } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { watchFile, unwatchFile, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { isIPv6, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { certFingerprint, subjectSerial } from '../../shared/pki/x509.js';
import { ConnectorError, errorMessage } from '../../shared/errors.js';
import { readVxlanVni, VXLAN_HEADER_LEN, writeVxlanHeader } from '../../shared/l2/vxlan.js';
import type { Logger } from '../../shared/log.js';
import { admitDevice, type Registry } from '../../shared/registry/registry.js';
import { RegistryWatcher } from '../../shared/registry/registry-file.js';
import { ALPN_PROTOCOL, encodeControl, CONTROL_VNI } from '../../shared/tunnel/control.js';
import { encodeRecord } from '../../shared/tunnel/records.js';
import { openAuditLog, type AuditLog } from './audit-log.js';
import type { HeadendConfig } from '../core/config.js';
import { Forwarder, type SegmentInfo } from '../core/forwarder.js';
import { headendMetrics, type Metrics } from '../core/metrics.js';
import { HeadendSession } from './session.js';
import { createVtepSender, type VtepSender } from './vtep-sender.js';

export interface Headend {
  readonly tunnelAddress: AddressInfo;
  readonly vxlanAddress: AddressInfo;
  readonly metricsAddress: AddressInfo | null;
  /** Re-reads the registry (SIGHUP): new segments and VTEPs apply, refused devices are disconnected. */
  reload(): void;
  renderMetrics(): string;
  sessions(): readonly { id: string; serial: string; tenant: string; vni: number; state: string }[];
  close(): Promise<void>;
}

export interface HeadendDeps {
  log: Logger;
  now?: () => Date;
  /** Poll interval for registry file changes, ms (0 disables; SIGHUP still works). */
  registryPollMs?: number;
}

/**
 * Maps a handshake failure to a refusal reason for metrics and logs. With rejectUnauthorized, Node
 * verifies the client chain after the handshake and destroys the socket, leaving the OpenSSL verify
 * code in `authorizationError` while the error itself only says "socket hang up".
 */
export function handshakeRefusalReason(e: NodeJS.ErrnoException, authorizationError?: string): string {
  if (authorizationError === 'CERT_HAS_EXPIRED') return 'cert-expired';
  if (authorizationError === 'CERT_NOT_YET_VALID') return 'cert-not-yet-valid';
  if (authorizationError === 'CERT_REVOKED') return 'cert-revoked';
  if (authorizationError) return 'cert-untrusted';
  const code = e.code ?? '';
  const msg = e.message.toLowerCase();
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || msg.includes('unsupported protocol') || msg.includes('version')) return 'tls-version';
  if (code.includes('PEER_DID_NOT_RETURN_A_CERTIFICATE') || msg.includes('did not return a certificate')) return 'no-client-cert';
  if (msg.includes('certificate verify failed') || code.includes('CERTIFICATE_VERIFY_FAILED')) return 'cert-verify-failed';
  if (msg.includes('application protocol') || code.includes('NO_APPLICATION_PROTOCOL')) return 'alpn';
  if (code === 'ECONNRESET' || msg.includes('socket hang up')) return 'handshake-aborted';
  return 'handshake-failed';
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot read ${what} ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

function segmentsOf(reg: Registry): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  for (const [tname, t] of Object.entries(reg.tenants)) {
    for (const [sname, s] of Object.entries(t.segments)) {
      out.push({ vni: s.vni, name: `${tname}/${sname}`, vteps: s.vteps, multiSite: s.multiSite });
    }
  }
  return out;
}

function listen(server: TlsServer | HttpServer, host: string, port: number, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new ConnectorError('CK_ERR_IO', `cannot listen for ${what} on ${host}:${port}: ${errorMessage(e)}`, { cause: e })),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startHeadend(config: HeadendConfig, deps: HeadendDeps): Promise<Headend> {
  const log = deps.log;
  const now = deps.now ?? (() => new Date());
  const metrics: Metrics = headendMetrics();
  const drops = new Map<string, number>();
  const countDrop = (reason: string): void => {
    drops.set(reason, (drops.get(reason) ?? 0) + 1);
  };
  const refuse = (reason: string): void => metrics.inc('connector_headend_refusals_total', { reason });
  const auditLog: AuditLog = openAuditLog(config.auditLogFile, now, (p) => log.error('audit log problem', { problem: p }));
  // A failing audit write (disk full) must not take the data path down with it: log loudly and count.
  const audit = {
    append(...args: Parameters<AuditLog['append']>): void {
      try {
        auditLog.append(...args);
      } catch (e) {
        metrics.inc('connector_headend_audit_errors_total');
        log.error('audit write failed', { error: errorMessage(e), cause: errorMessage((e as Error).cause) });
      }
    },
  };
  const watcher = new RegistryWatcher(config.registryFile);
  let registry = watcher.reload();

  const sessions = new Map<string, HeadendSession>();
  const bySerial = new Map<string, HeadendSession>();

  const udp: UdpSocket = createSocket({ type: isIPv6(config.vxlan.localAddress) ? 'udp6' : 'udp4' });
  // Set once the VXLAN socket is bound; batches full-size frames per VTEP with UDP GSO.
  let vtep: VtepSender | null = null;
  const forwarder = new Forwarder(
    {
      toSession: (id, frame) => sessions.get(id)?.sendFrame(frame) ?? false,
      toVtep: (address, vni, frame) => {
        if (vtep) {
          vtep.send(address, vni, frame);
          return;
        }
        const pkt = Buffer.allocUnsafe(VXLAN_HEADER_LEN + frame.length);
        writeVxlanHeader(pkt, 0, vni);
        frame.copy(pkt, VXLAN_HEADER_LEN);
        udp.send(pkt, config.vxlan.vtepPort, address);
      },
    },
    { ageMs: config.mac.ageMs, maxEntries: config.mac.maxEntriesPerSegment },
    () => performance.now(),
  );

  const checkMtu = (reg: Registry): void => {
    metrics.reset('connector_headend_segment_mtu_too_small');
    for (const [tname, t] of Object.entries(reg.tenants)) {
      for (const [sname, s] of Object.entries(t.segments)) {
        const small = s.vtepPathMtu < config.minVtepPathMtu;
        metrics.set('connector_headend_segment_mtu_too_small', { vni: s.vni, segment: `${tname}/${sname}` }, small ? 1 : 0);
        if (small) {
          log.warn('segment VTEP path MTU cannot carry 1514-byte inner frames', {
            segment: `${tname}/${sname}`,
            vni: s.vni,
            vtepPathMtu: s.vtepPathMtu,
            needed: config.minVtepPathMtu,
            fix: 'raise the fabric MTU to >= 1550 or set the tenant VM MTU to 1450',
          });
        }
      }
    }
  };

  const applyRegistry = (reg: Registry, why: string): void => {
    registry = reg;
    forwarder.setSegments(segmentsOf(reg));
    checkMtu(reg);
    for (const s of [...sessions.values()]) {
      const a = admitDevice(reg, s.identity.serial);
      if (!a.ok) {
        log.warn('registry change refuses a connected device', { serial: s.identity.serial, reason: a.reason });
        s.close(`registry:${a.reason}`, true);
      } else if (a.segment.vni !== s.identity.vni) {
        s.close('segment-changed', true);
      }
    }
    log.info('registry loaded', { why, tenants: Object.keys(reg.tenants).length, devices: Object.keys(reg.devices).length, denylist: reg.denylist.length });
  };

  const reload = (why = 'sighup'): void => {
    try {
      applyRegistry(watcher.reload(), why);
      metrics.inc('connector_headend_registry_reloads_total', { result: 'ok' });
    } catch (e) {
      metrics.inc('connector_headend_registry_reloads_total', { result: 'error' });
      log.error('registry reload failed; keeping the previous registry', { error: errorMessage(e) });
    }
  };
  applyRegistry(registry, 'start');

  const onSecureConnection = (socket: TLSSocket): void => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.on('error', () => {});
    if (socket.alpnProtocol !== ALPN_PROTOCOL) {
      refuse('alpn');
      log.warn('refused: ALPN', { remote, alpn: String(socket.alpnProtocol) });
      socket.destroy();
      return;
    }
    let cert: X509Certificate | undefined;
    try {
      cert = socket.getPeerX509Certificate();
    } catch {
      cert = undefined;
    }
    if (!cert) {
      refuse('no-client-cert');
      socket.destroy();
      return;
    }
    const fingerprint = certFingerprint(cert);
    const serial = subjectSerial(cert.subject) ?? '';
    const a = admitDevice(registry, serial);
    if (!a.ok) {
      refuse(a.reason);
      log.warn('refused', { remote, serial, reason: a.reason, fingerprint });
      audit.append('refused', { serial, remote, fingerprint, reason: a.reason });
      socket.end(encodeRecord(CONTROL_VNI, encodeControl({ type: 'error', code: 'refused', message: a.reason })));
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    const id = randomBytes(8).toString('hex');
    const identity = { id, serial, tenant: a.tenant, segmentName: a.segmentName, vni: a.segment.vni, remote, fingerprint };
    const old = bySerial.get(serial);
    if (old) old.close('replaced', true);
    audit.append('connect', { sessionId: id, serial, tenant: a.tenant, segment: a.segmentName, vni: a.segment.vni, remote, fingerprint });
    metrics.inc('connector_headend_sessions_total');
    const session = new HeadendSession(socket, identity, { ...config.session, headendVersion: config.headendVersion }, {
      onUp: (s) => {
        forwarder.attach(s.identity.vni, s.identity.id);
      },
      onFrame: (s, frame) => forwarder.fromSession(s.identity.vni, s.identity.id, frame),
      onDrop: countDrop,
      onClose: (s, reason) => {
        sessions.delete(s.identity.id);
        if (bySerial.get(s.identity.serial) === s) bySerial.delete(s.identity.serial);
        forwarder.detach(s.identity.vni, s.identity.id);
        metrics.inc('connector_headend_session_closes_total', { reason: reason.split(':')[0] ?? reason });
        const c = s.counters;
        audit.append('disconnect', {
          sessionId: s.identity.id,
          serial: s.identity.serial,
          tenant: s.identity.tenant,
          segment: s.identity.segmentName,
          vni: s.identity.vni,
          remote: s.identity.remote,
          fingerprint: s.identity.fingerprint,
          site: s.site,
          agentVersion: s.agentVersion,
          bytesIn: c.bytesIn,
          bytesOut: c.bytesOut,
          framesIn: c.framesIn,
          framesOut: c.framesOut,
          durationMs: Date.now() - s.startedAt,
          reason,
        });
        log.info('session closed', { session: s.identity.id, serial: s.identity.serial, reason, framesIn: c.framesIn, framesOut: c.framesOut });
      },
    }, log);
    sessions.set(id, session);
    bySerial.set(serial, session);
    log.info('session admitted', { session: id, serial, tenant: a.tenant, segment: a.segmentName, vni: a.segment.vni, remote, fingerprint });
  };

  const deviceCa = readPem(config.tls.deviceCaFile, 'device CA bundle (tls.deviceCa)');
  const server = createTlsServer({
    key: readPem(config.tls.keyFile, 'headend key (tls.key)'),
    cert: readPem(config.tls.certFile, 'headend certificate (tls.cert)'),
    ca: deviceCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ALPNProtocols: [ALPN_PROTOCOL],
    // Refuse handshakes that stall (slowloris) well before the session's own timers take over.
    handshakeTimeout: config.session.helloTimeoutMs,
  });
  server.on('secureConnection', onSecureConnection);
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: TLSSocket) => {
    const verify = socket.authorizationError ? String(socket.authorizationError) : undefined;
    const reason = handshakeRefusalReason(e, verify);
    refuse(reason);
    log.warn('refused: TLS handshake', {
      remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      reason,
      error: e.message.trim(),
      ...(verify ? { verify } : {}),
    });
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void =>
      reject(new ConnectorError('CK_ERR_IO', `cannot bind the VXLAN socket to ${config.vxlan.localAddress}:${config.vxlan.port}: ${e.message}`, { cause: e }));
    udp.once('error', onError);
    udp.bind(config.vxlan.port, config.vxlan.localAddress, () => {
      udp.removeListener('error', onError);
      resolve();
    });
  });
  udp.on('error', (e) => log.error('VXLAN socket error', { error: e.message }));
  const sender = await createVtepSender({
    udp,
    localAddress: config.vxlan.localAddress,
    port: config.vxlan.vtepPort,
    onGsoOff: (reason) => log.warn('VXLAN egress: UDP GSO switched off, one send per frame from now on', { reason, fix: 'check the VTEP path MTU (>= 1550)' }),
  });
  if (!sender.gso) log.info('VXLAN egress without UDP GSO: one send per frame', { reason: sender.gsoReason });
  vtep = sender;
  udp.on('message', (msg, rinfo) => {
    const vni = readVxlanVni(msg, 0);
    if (typeof vni === 'string') {
      countDrop(vni);
      return;
    }
    forwarder.fromVtep(rinfo.address, vni, msg.subarray(VXLAN_HEADER_LEN));
  });

  const tunnelAddress = await listen(server, config.listen.host, config.listen.port, 'tunnels (listen)');
  server.on('error', (e) => log.error('tunnel listener error', { error: e.message }));

  const renderMetrics = (): string => {
    metrics.reset('connector_headend_sessions');
    metrics.reset('connector_headend_mac_entries');
    for (const { info, stats, macs, sessions: n } of forwarder.segmentStats()) {
      const l = { vni: info.vni, segment: info.name };
      metrics.set('connector_headend_sessions', l, n);
      metrics.set('connector_headend_mac_entries', l, macs);
      for (const [dir, st] of [['tunnel-in', stats.tunnelIn], ['tunnel-out', stats.tunnelOut], ['vtep-in', stats.vtepIn], ['vtep-out', stats.vtepOut]] as const) {
        metrics.set('connector_headend_frames_total', { ...l, direction: dir }, st.frames);
        metrics.set('connector_headend_bytes_total', { ...l, direction: dir }, st.bytes);
      }
    }
    for (const [reason, n] of Object.entries(forwarder.drops)) if (n > 0) drops.set(`fwd:${reason}`, n);
    for (const [reason, n] of drops) metrics.set('connector_headend_drops_total', { reason: reason.replace(/^fwd:/, '') }, n);
    return metrics.render();
  };

  let metricsServer: HttpServer | null = null;
  let metricsAddress: AddressInfo | null = null;
  if (config.metrics) {
    metricsServer = createHttpServer((req, res) => {
      if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(renderMetrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found; try GET /metrics\n');
      }
    });
    metricsAddress = await listen(metricsServer, config.metrics.host, config.metrics.port, 'metrics');
    metricsServer.on('error', (e) => log.error('metrics listener error', { error: e.message }));
  }

  const pollMs = deps.registryPollMs ?? 2_000;
  let lastStamp = '';
  const onFileChange = (cur: { mtimeMs: number; size: number }): void => {
    const stamp = `${cur.mtimeMs}:${cur.size}`;
    if (stamp !== lastStamp) {
      lastStamp = stamp;
      reload('file-changed');
    }
  };
  if (pollMs > 0) watchFile(config.registryFile, { interval: pollMs, persistent: false }, onFileChange);

  audit.append('headend-start', { remote: `${tunnelAddress.address}:${tunnelAddress.port}` });
  log.info('headend listening', {
    tunnel: `${tunnelAddress.address}:${tunnelAddress.port}`,
    vxlan: `${config.vxlan.localAddress}:${(udp.address() as AddressInfo).port}`,
    metrics: metricsAddress ? `${metricsAddress.address}:${metricsAddress.port}` : 'off',
  });

  return {
    tunnelAddress,
    vxlanAddress: udp.address() as AddressInfo,
    metricsAddress,
    reload: () => reload('sighup'),
    renderMetrics,
    sessions: () =>
      [...sessions.values()].map((s) => ({ id: s.identity.id, serial: s.identity.serial, tenant: s.identity.tenant, vni: s.identity.vni, state: s.state })),
    async close() {
      if (pollMs > 0) unwatchFile(config.registryFile, onFileChange);
      for (const s of [...sessions.values()]) s.close('headend-shutdown', true);
      await new Promise<void>((r) => server.close(() => r()));
      if (metricsServer) {
        metricsServer.closeAllConnections();
        await new Promise<void>((r) => metricsServer?.close(() => r()));
      }
      await vtep?.close();
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}
