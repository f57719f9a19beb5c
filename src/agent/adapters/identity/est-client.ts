// SPDX-License-Identifier: UNLICENSED
// The device's EST client (RFC 7030): TLS 1.3, server pinned to the DC trust anchor from the factory
// block, client authenticated by the IDevID (simpleenroll) or the operational cert (simplereenroll).
import { request } from 'node:https';
import { CT_PKCS10, estOperationUrl, parseRetryAfter, type EstOperation } from '../../../shared/est/protocol.js';
import { decodeBase64Body, decodeCertsOnly, encodeBase64Body } from '../../../shared/est/pkcs7.js';
import { ConnectorError } from '../../../shared/errors.js';

export interface EstTls {
  /** PEM trust anchor for the server. */
  ca: string;
  /** PEM client certificate chain and key; absent for cacerts. */
  cert?: string;
  key?: string;
}

export type EstResult =
  | { kind: 'issued'; certsDer: Buffer[] }
  | { kind: 'retry'; afterS: number | undefined; message: string }
  | { kind: 'refused'; status: number; message: string }
  | { kind: 'error'; message: string };

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(url: URL, method: 'GET' | 'POST', tls: EstTls, body: string | undefined, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: tls.ca,
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        minVersion: 'TLSv1.3',
        timeout: timeoutMs,
        headers:
          body !== undefined
            ? { 'Content-Type': CT_PKCS10, 'Content-Transfer-Encoding': 'base64', 'Content-Length': String(Buffer.byteLength(body)) }
            : {},
        agent: false,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new ConnectorError('CK_ERR_EST', `no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export interface EstClientOptions {
  baseUrl: string;
  tls: EstTls;
  nowMs: number;
  timeoutMs?: number;
}

async function exchange(o: EstClientOptions, op: EstOperation, csrDer?: Uint8Array): Promise<EstResult> {
  let res: RawResponse;
  try {
    res = await call(
      estOperationUrl(o.baseUrl, op),
      csrDer ? 'POST' : 'GET',
      o.tls,
      csrDer ? encodeBase64Body(csrDer) : undefined,
      o.timeoutMs ?? 30_000,
    );
  } catch (e) {
    return { kind: 'error', message: `EST ${op} to ${o.baseUrl}: ${(e as Error).message}` };
  }
  const text = res.body.toString('utf8').trim().slice(0, 300);
  if (res.status === 202)
    return { kind: 'retry', afterS: parseRetryAfter(firstHeader(res.headers['retry-after']), o.nowMs), message: text };
  if (res.status === 503)
    return { kind: 'retry', afterS: parseRetryAfter(firstHeader(res.headers['retry-after']), o.nowMs), message: `server busy: ${text}` };
  if (res.status !== 200) {
    if (res.status >= 500) return { kind: 'error', message: `EST ${op}: HTTP ${res.status}: ${text}` };
    return { kind: 'refused', status: res.status, message: `HTTP ${res.status}: ${text}` };
  }
  try {
    return { kind: 'issued', certsDer: decodeCertsOnly(decodeBase64Body(res.body)) };
  } catch (e) {
    return { kind: 'error', message: `EST ${op}: ${(e as Error).message}` };
  }
}

export const estCaCerts = (o: EstClientOptions): Promise<EstResult> => exchange(o, 'cacerts');
export const estSimpleEnroll = (o: EstClientOptions, csrDer: Uint8Array): Promise<EstResult> => exchange(o, 'simpleenroll', csrDer);
export const estSimpleReenroll = (o: EstClientOptions, csrDer: Uint8Array): Promise<EstResult> => exchange(o, 'simplereenroll', csrDer);
