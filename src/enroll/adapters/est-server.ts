// SPDX-License-Identifier: UNLICENSED
// EST server (RFC 7030) over HTTPS/TLS 1.3: the adapter around decideEnrollment. It owns the socket,
// the client-certificate check, the RFC content types and base64 bodies, and the issuance log. The one
// place EST outcomes become HTTP status codes.
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { ConnectorError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import {
  certFromPem,
  certFingerprint,
  importPrivateKeyPem,
  splitPemChain,
  subjectSerial,
  type Issuer,
} from '../../shared/pki/x509.js';
import { RegistryWatcher } from '../../shared/registry/registry-file.js';
import type { EstServerConfig } from '../core/config.js';
import { encodeCsrAttrs } from '../core/csrattrs.js';
import { decideEnrollment, type EnrollOp } from '../core/issuer.js';
import { decodeBase64Body, encodeBase64Body, encodeCertsOnly } from '../../shared/est/pkcs7.js';
import {
  CT_CSRATTRS,
  CT_PKCS10,
  CT_PKCS7,
  CT_PKCS7_CERTS_ONLY,
  EST_MAX_BODY_BYTES,
  EST_PATH_PREFIX,
} from '../../shared/est/protocol.js';

export interface EstServerDeps {
  log: Logger;
  /** Wall clock for certificate validity; injected so tests can issue "in the future". */
  now: () => Date;
}

export interface EstServer {
  /** https://host:port/.well-known/est */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_EST', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The peer's chain as Node completed it, leaf first. */
function peerChain(socket: TLSSocket): DetailedPeerCertificate[] {
  const out: DetailedPeerCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (c && c.raw && !out.some((x) => x.fingerprint256 === c?.fingerprint256)) {
    out.push(c);
    c = c.issuerCertificate;
  }
  return out;
}

function chainsTo(chain: DetailedPeerCertificate[], anchors: readonly NodeX509[]): boolean {
  const fps = new Set(anchors.map((a) => a.fingerprint256));
  if (chain.slice(1).some((c) => fps.has(c.fingerprint256))) return true;
  const leaf = chain[0];
  if (!leaf) return false;
  const l = new NodeX509(leaf.raw);
  return anchors.some((a) => l.checkIssued(a) && l.verify(a.publicKey));
}

export async function startEstServer(cfg: EstServerConfig, deps: EstServerDeps): Promise<EstServer> {
  const log = deps.log;
  const factoryCas = cfg.factoryCaFiles.flatMap((f) => splitPemChain(readPem(f, 'factory CA')));
  if (factoryCas.length === 0) throw new ConnectorError('CK_ERR_EST', 'factoryCaFiles hold no certificate');
  const deviceCaPem = readPem(cfg.deviceCaCertFile, 'device CA certificate');
  const chainPems = cfg.deviceCaChainFile ? splitPemChain(readPem(cfg.deviceCaChainFile, 'device CA chain')) : [];
  const deviceCa: Issuer = {
    cert: certFromPem(deviceCaPem),
    privateKey: await importPrivateKeyPem(readPem(cfg.deviceCaKeyFile, 'device CA key')),
  };
  const factoryAnchors = factoryCas.map((p) => new NodeX509(p));
  const deviceAnchors = [new NodeX509(deviceCaPem)];
  const cacertsBody = encodeBase64Body(
    encodeCertsOnly([new Uint8Array(deviceCa.cert.rawData), ...chainPems.map((p) => new Uint8Array(new NodeX509(p).raw))]),
  );
  const registry = new RegistryWatcher(cfg.registryFile);

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body: string): void => {
    res.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const sendText = (res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void =>
    send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', ...extra }, text + '\n');
  const sendBase64 = (res: ServerResponse, contentType: string, b64: string): void =>
    send(res, 200, { 'Content-Type': contentType, 'Content-Transfer-Encoding': 'base64' }, b64);

  const readBody = (req: IncomingMessage): Promise<Buffer | undefined> =>
    new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (b: Buffer) => {
        size += b.length;
        if (size > EST_MAX_BODY_BYTES) {
          resolve(undefined);
          req.destroy();
          return;
        }
        parts.push(b);
      });
      req.on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
    });

  async function enroll(op: EnrollOp, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    const remote = socket.remoteAddress ?? '';
    const chain = peerChain(socket);
    const leaf = chain[0];
    if (!leaf) {
      log.warn('est refused', { op, remote, reason: 'no-client-cert' });
      sendText(res, 401, `${op} needs a TLS client certificate (${op === 'simpleenroll' ? 'the factory IDevID' : 'the current operational certificate'})`);
      return;
    }
    const anchors = op === 'simpleenroll' ? factoryAnchors : deviceAnchors;
    const clientFp = certFingerprint(new NodeX509(leaf.raw));
    if (!socket.authorized || !chainsTo(chain, anchors)) {
      const why = socket.authorized ? 'issued by the wrong CA' : String(socket.authorizationError ?? 'not verified');
      log.warn('est refused', { op, remote, reason: 'untrusted-client-cert', detail: why, fingerprint: clientFp });
      sendText(
        res,
        403,
        `client certificate refused (${why}): ${op} accepts ${op === 'simpleenroll' ? 'an IDevID from the factory CA' : 'an operational certificate from the device CA'}`,
      );
      return;
    }
    const serial = subjectSerial(new NodeX509(leaf.raw).subject);
    if (!serial) {
      sendText(res, 403, 'client certificate has no serial (CN or serialNumber)');
      return;
    }
    const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (ct !== CT_PKCS10) {
      sendText(res, 415, `Content-Type must be ${CT_PKCS10} (base64 DER CSR), got "${req.headers['content-type'] ?? ''}"`);
      return;
    }
    const body = await readBody(req);
    if (!body) {
      sendText(res, 413, `request body larger than ${EST_MAX_BODY_BYTES} bytes`);
      return;
    }
    let csrDer: Buffer;
    try {
      csrDer = decodeBase64Body(body);
    } catch (e) {
      sendText(res, 400, (e as Error).message);
      return;
    }
    const outcome = await decideEnrollment({
      op,
      clientSerial: serial,
      clientFingerprint: clientFp,
      csrDer,
      registry: registry.get(),
      deviceCa,
      now: deps.now(),
      lifetimeS: cfg.certLifetimeS,
      backdateS: cfg.backdateS,
      retryAfterS: cfg.retryAfterS,
      remote,
    });
    switch (outcome.kind) {
      case 'issued':
        appendFileSync(cfg.issuanceLogFile, JSON.stringify(outcome.record) + '\n', { mode: 0o640 });
        log.info('est issued', { op, serial, tenant: outcome.record.tenant, fingerprint: outcome.record.fingerprint, notAfter: outcome.record.notAfter, remote });
        sendBase64(res, CT_PKCS7_CERTS_ONLY, encodeBase64Body(encodeCertsOnly([outcome.certDer])));
        return;
      case 'pending':
        log.info('est pending', { op, serial, reason: outcome.reason, retryAfterS: outcome.retryAfterS, remote });
        sendText(res, 202, `serial ${serial} is not claimed by a tenant yet; retry later`, { 'Retry-After': String(outcome.retryAfterS) });
        return;
      case 'refused':
        log.warn('est refused', { op, serial, reason: outcome.reason, detail: outcome.message, remote });
        sendText(res, outcome.status, `${outcome.reason}: ${outcome.message}`);
        return;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'https://est').pathname;
    const m = new RegExp(`^${EST_PATH_PREFIX.replace(/[./]/g, '\\$&')}/(?:[A-Za-z0-9_-]+/)?([a-z]+)$`).exec(path);
    const op = m?.[1];
    const wantMethod = op === 'simpleenroll' || op === 'simplereenroll' ? 'POST' : 'GET';
    if (op !== 'cacerts' && op !== 'csrattrs' && op !== 'simpleenroll' && op !== 'simplereenroll') {
      sendText(res, 404, `unknown EST path ${path}; operations live under ${EST_PATH_PREFIX}/`);
      return;
    }
    if (req.method !== wantMethod) {
      sendText(res, 405, `${op} takes ${wantMethod}`, { Allow: wantMethod });
      return;
    }
    if (op === 'cacerts') return sendBase64(res, CT_PKCS7, cacertsBody);
    if (op === 'csrattrs') return sendBase64(res, CT_CSRATTRS, encodeBase64Body(encodeCsrAttrs()));
    return enroll(op, req, res);
  }

  const server: Server = createServer(
    {
      cert: readPem(cfg.tlsCertFile, 'TLS certificate'),
      key: readPem(cfg.tlsKeyFile, 'TLS key'),
      ca: [...factoryCas, deviceCaPem, ...chainPems],
      requestCert: true,
      // cacerts and csrattrs are public (RFC 7030 section 4.1.1); enrollment checks the chain itself.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        log.error('est internal error', { error: (e as Error).message });
        if (!res.headersSent) sendText(res, 500, 'internal error');
        else res.destroy();
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
  log.info('est listening', { host: cfg.host, port });
  return {
    url: `https://${hostForUrl.includes(':') ? `[${hostForUrl}]` : hostForUrl}:${port}${EST_PATH_PREFIX}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
