// SPDX-License-Identifier: UNLICENSED
// The EST server's request -> response decisions (RFC 7030): which operation a path names, which client
// certificate each operation accepts, the content-type and body checks, and the one place EST outcomes
// become HTTP status codes. The HTTPS adapter hands in what it saw on the connection and writes back what
// this returns; the registry, the issuance log and the clock come in as ports.
import { X509Certificate as NodeX509 } from 'node:crypto';
import type { Logger } from '../../shared/log.js';
import { certFingerprint, subjectSerial, type Issuer } from '../../shared/pki/x509.js';
import type { Registry } from '../../shared/registry/registry.js';
import { decodeBase64Body, encodeBase64Body, encodeCertsOnly } from '../../shared/est/pkcs7.js';
import { CT_CSRATTRS, CT_PKCS10, CT_PKCS7, CT_PKCS7_CERTS_ONLY, EST_MAX_BODY_BYTES, EST_PATH_PREFIX } from '../../shared/est/protocol.js';
import { encodeCsrAttrs } from './csrattrs.js';
import { decideEnrollment, type EnrollOp, type IssuanceRecord } from './issuer.js';

export interface EstResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What the TLS layer established about the client. */
export interface EstClient {
  /** DER certificates of the peer's chain as TLS completed it, leaf first; empty without a certificate. */
  readonly chain: readonly Uint8Array[];
  /** Whether TLS verified the chain against the server's CA list. */
  readonly authorized: boolean;
  readonly authorizationError?: string | undefined;
  readonly remote: string;
}

export interface EstRequest {
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly url: string;
  readonly contentType: string | undefined;
  readonly client: EstClient;
  /** The body, or undefined when it is larger than EST_MAX_BODY_BYTES. Read only when needed. */
  readBody(): Promise<Buffer | undefined>;
}

export interface EstServiceOptions {
  /** simpleenroll accepts IDevIDs that chain to one of these. */
  readonly factoryAnchors: readonly NodeX509[];
  /** simplereenroll accepts operational certificates that chain to one of these. */
  readonly deviceAnchors: readonly NodeX509[];
  readonly deviceCa: Issuer;
  /** /cacerts: the device CA first, then its intermediates (DER). */
  readonly caCerts: readonly Uint8Array[];
  readonly certLifetimeS: number;
  readonly backdateS: number;
  readonly retryAfterS: number;
  /** The registry as it is now (the adapter reloads it when its file changes). */
  registry(): Registry;
  /** Called for every certificate issued, before the response goes out. */
  recordIssuance(record: IssuanceRecord): void;
  /** Wall clock for certificate validity. */
  now(): Date;
  readonly log: Logger;
}

export type EstHandler = (req: EstRequest) => Promise<EstResponse>;

const OP_PATH = new RegExp(`^${EST_PATH_PREFIX.replace(/[./]/g, '\\$&')}/(?:[A-Za-z0-9_-]+/)?([a-z]+)$`);

function text(status: number, message: string, extra: Record<string, string> = {}): EstResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...extra }, body: message + '\n' };
}

function base64(contentType: string, b64: string): EstResponse {
  return { status: 200, headers: { 'Content-Type': contentType, 'Content-Transfer-Encoding': 'base64' }, body: b64 };
}

function chainsTo(chain: readonly NodeX509[], anchors: readonly NodeX509[]): boolean {
  const fps = new Set(anchors.map((a) => a.fingerprint256));
  if (chain.slice(1).some((c) => fps.has(c.fingerprint256))) return true;
  const leaf = chain[0];
  if (!leaf) return false;
  return anchors.some((a) => leaf.checkIssued(a) && leaf.verify(a.publicKey));
}

export function createEstService(o: EstServiceOptions): EstHandler {
  const log = o.log;
  const cacertsBody = encodeBase64Body(encodeCertsOnly([...o.caCerts]));

  async function enroll(op: EnrollOp, req: EstRequest): Promise<EstResponse> {
    const { remote } = req.client;
    const chain = req.client.chain.map((der) => new NodeX509(der));
    const leaf = chain[0];
    if (!leaf) {
      log.warn('est refused', { op, remote, reason: 'no-client-cert' });
      return text(
        401,
        `${op} needs a TLS client certificate (${op === 'simpleenroll' ? 'the factory IDevID' : 'the current operational certificate'})`,
      );
    }
    const anchors = op === 'simpleenroll' ? o.factoryAnchors : o.deviceAnchors;
    const clientFp = certFingerprint(leaf);
    if (!req.client.authorized || !chainsTo(chain, anchors)) {
      const why = req.client.authorized ? 'issued by the wrong CA' : (req.client.authorizationError ?? 'not verified');
      log.warn('est refused', { op, remote, reason: 'untrusted-client-cert', detail: why, fingerprint: clientFp });
      return text(
        403,
        `client certificate refused (${why}): ${op} accepts ${op === 'simpleenroll' ? 'an IDevID from the factory CA' : 'an operational certificate from the device CA'}`,
      );
    }
    const serial = subjectSerial(leaf.subject);
    if (!serial) return text(403, 'client certificate has no serial (CN or serialNumber)');
    const ct = (req.contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (ct !== CT_PKCS10) return text(415, `Content-Type must be ${CT_PKCS10} (base64 DER CSR), got "${req.contentType ?? ''}"`);
    const body = await req.readBody();
    if (!body) return text(413, `request body larger than ${EST_MAX_BODY_BYTES} bytes`);
    let csrDer: Buffer;
    try {
      csrDer = decodeBase64Body(body);
    } catch (e) {
      return text(400, (e as Error).message);
    }
    const outcome = await decideEnrollment({
      op,
      clientSerial: serial,
      clientFingerprint: clientFp,
      csrDer,
      registry: o.registry(),
      deviceCa: o.deviceCa,
      now: o.now(),
      lifetimeS: o.certLifetimeS,
      backdateS: o.backdateS,
      retryAfterS: o.retryAfterS,
      remote,
    });
    switch (outcome.kind) {
      case 'issued':
        o.recordIssuance(outcome.record);
        log.info('est issued', {
          op,
          serial,
          tenant: outcome.record.tenant,
          fingerprint: outcome.record.fingerprint,
          notAfter: outcome.record.notAfter,
          remote,
        });
        return base64(CT_PKCS7_CERTS_ONLY, encodeBase64Body(encodeCertsOnly([outcome.certDer])));
      case 'pending':
        log.info('est pending', { op, serial, reason: outcome.reason, retryAfterS: outcome.retryAfterS, remote });
        return text(202, `serial ${serial} is not claimed by a tenant yet; retry later`, { 'Retry-After': String(outcome.retryAfterS) });
      case 'refused':
        log.warn('est refused', { op, serial, reason: outcome.reason, detail: outcome.message, remote });
        return text(outcome.status, `${outcome.reason}: ${outcome.message}`);
    }
  }

  async function route(req: EstRequest): Promise<EstResponse> {
    const path = new URL(req.url, 'https://est').pathname;
    const op = OP_PATH.exec(path)?.[1];
    const wantMethod = op === 'simpleenroll' || op === 'simplereenroll' ? 'POST' : 'GET';
    if (op !== 'cacerts' && op !== 'csrattrs' && op !== 'simpleenroll' && op !== 'simplereenroll') {
      return text(404, `unknown EST path ${path}; operations live under ${EST_PATH_PREFIX}/`);
    }
    if (req.method !== wantMethod) return text(405, `${op} takes ${wantMethod}`, { Allow: wantMethod });
    if (op === 'cacerts') return base64(CT_PKCS7, cacertsBody);
    if (op === 'csrattrs') return base64(CT_CSRATTRS, encodeBase64Body(encodeCsrAttrs()));
    return enroll(op, req);
  }

  return async (req) => {
    try {
      return await route(req);
    } catch (e) {
      log.error('est internal error', { error: (e as Error).message });
      return text(500, 'internal error');
    }
  };
}
