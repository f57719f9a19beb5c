// SPDX-License-Identifier: UNLICENSED
// RFC 7030 protocol constants shared by the EST server and the device's EST client.

export const EST_PATH_PREFIX = '/.well-known/est';
export type EstOperation = 'cacerts' | 'simpleenroll' | 'simplereenroll' | 'csrattrs';
export const EST_OPERATIONS: readonly EstOperation[] = ['cacerts', 'simpleenroll', 'simplereenroll', 'csrattrs'];

/** RFC 7030 section 4.1.3 (cacerts) */
export const CT_PKCS7 = 'application/pkcs7-mime';
/** RFC 7030 section 4.2.3 (simpleenroll, simplereenroll responses) */
export const CT_PKCS7_CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
/** RFC 7030 section 4.2.1 (request body) */
export const CT_PKCS10 = 'application/pkcs10';
/** RFC 7030 section 4.5.2 */
export const CT_CSRATTRS = 'application/csrattrs';
/** Largest request body the server reads; a P-256 CSR is ~400 bytes of base64. */
export const EST_MAX_BODY_BYTES = 64 * 1024;

/** Retry-After is delta-seconds or an HTTP-date (RFC 9110 section 10.2.3); returns seconds, or undefined. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, Math.ceil((t - nowMs) / 1000));
}

/** Joins the base URL from the factory block (".../.well-known/est" or "host root") with an operation. */
export function estOperationUrl(base: string, op: EstOperation): URL {
  const u = new URL(base);
  let path = u.pathname.replace(/\/+$/, '');
  if (!path.includes(EST_PATH_PREFIX)) path += EST_PATH_PREFIX;
  u.pathname = `${path}/${op}`;
  return u;
}
