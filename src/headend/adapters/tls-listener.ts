// SPDX-License-Identifier: UNLICENSED
// The headend's TLS 1.3 listener: mutual TLS against the device CA bundle, ALPN required, stalled
// handshakes cut off. Every connection that completes with a client certificate is handed on with the
// certificate's serial and fingerprint; admission decides in core/admission.ts. Handshake failures are
// mapped to refusal reasons for metrics and logs.
import type { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../../shared/log.js';
import { certFingerprint, subjectSerial } from '../../shared/pki/x509.js';
import { ALPN_PROTOCOL, CONTROL_VNI, encodeControl } from '../../shared/tunnel/control.js';
import { encodeRecord } from '../../shared/tunnel/records.js';
import { RefusalLog } from '../../shared/net/refusal-log.js';
import { guardConnections } from '../../shared/net/service-guard.js';
import type { PeerCertificate } from '../core/admission.js';
import { listen } from './listen.js';

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

export interface TlsListenerOptions {
  host: string;
  port: number;
  key: string;
  cert: string;
  /** The device CA bundle client certificates must chain to. */
  deviceCa: string;
  handshakeTimeoutMs: number;
  /** The kernel's accept queue for the listener. */
  backlog?: number;
  /** Connections open at once, and from one address; over either a connection is closed before TLS. */
  maxConnections?: number;
  maxPerSource?: number;
  log: Logger;
  /** A connection refused before admission, by reason. */
  onRefused(reason: string): void;
  /** A connection with a client certificate, ready for admission. */
  onPeer(socket: TLSSocket, peer: PeerCertificate): void;
}

export interface TlsListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Tells a refused peer why (an `error` control record), then closes. */
export function refuseConnection(socket: TLSSocket, reason: string): void {
  socket.end(encodeRecord(CONTROL_VNI, encodeControl({ type: 'error', code: 'refused', message: reason })));
  setTimeout(() => socket.destroy(), 1_000).unref();
}

export async function openTlsListener(o: TlsListenerOptions): Promise<TlsListener> {
  const { log } = o;
  const refusals = new RefusalLog();
  const server = createServer({
    key: o.key,
    cert: o.cert,
    ca: o.deviceCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ALPNProtocols: [ALPN_PROTOCOL],
    // Refuse handshakes that stall (slowloris) well before the session's own timers take over.
    handshakeTimeout: o.handshakeTimeoutMs,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.on('error', () => {});
    if (socket.alpnProtocol !== ALPN_PROTOCOL) {
      o.onRefused('alpn');
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
      o.onRefused('no-client-cert');
      socket.destroy();
      return;
    }
    o.onPeer(socket, { serial: subjectSerial(cert.subject) ?? '', fingerprint: certFingerprint(cert), remote });
  });
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: TLSSocket) => {
    const verify = socket.authorizationError ? String(socket.authorizationError) : undefined;
    const reason = handshakeRefusalReason(e, verify);
    o.onRefused(reason);
    // Under a flood of bad handshakes one line each would bury everything else: a few per window, then
    // a count (the refusals metric has every one).
    refusals.note(reason, Date.now(), (suppressed) =>
      log.warn('refused: TLS handshake', {
        remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
        reason,
        error: e.message.trim(),
        ...(verify ? { verify } : {}),
        ...(suppressed > 0 ? { suppressedInLastWindow: suppressed } : {}),
      }),
    );
    socket.destroy();
  });
  guardConnections(server, {
    name: 'tunnel listener',
    maxConnections: o.maxConnections ?? 20_000,
    maxPerSource: o.maxPerSource ?? 1_000,
    idleTimeoutMs: 0,
    log,
  });
  const address = await listen(server, o.host, o.port, 'tunnels (listen)', o.backlog);
  server.on('error', (e) => log.error('tunnel listener error', { error: e.message }));
  return {
    address,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
