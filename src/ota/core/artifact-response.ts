// SPDX-License-Identifier: UNLICENSED
// The artifact server's decisions: which file a request names (never one outside the served directory),
// and the status, headers and byte range of the answer (HTTP Range, RFC 9110 section 14). Pure; the
// HTTPS adapter stats the file and streams the bytes.
import { join, resolve, sep } from 'node:path';
import { parseRange } from './range.js';

/** The file under `root` a request path names, or undefined when it is malformed or leaves `root`. */
export function artifactPath(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  const file = resolve(join(root, decoded));
  return file.startsWith(root + sep) ? file : undefined;
}

export type ArtifactAnswer =
  | { readonly kind: 'status'; readonly status: 404 | 405 | 416; readonly headers: Readonly<Record<string, string>> }
  | {
      readonly kind: 'file';
      readonly status: 200 | 206;
      readonly headers: Readonly<Record<string, string | number>>;
      /** Inclusive byte range to send; none for HEAD or an empty file. */
      readonly range: { readonly start: number; readonly end: number } | undefined;
    };

export function methodAllowed(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

export const METHOD_NOT_ALLOWED: ArtifactAnswer = { kind: 'status', status: 405, headers: { allow: 'GET, HEAD' } };
export const NOT_FOUND: ArtifactAnswer = { kind: 'status', status: 404, headers: {} };

/** The answer for an existing regular file of `size` bytes. */
export function artifactAnswer(method: string | undefined, size: number, rangeHeader: string | undefined): ArtifactAnswer {
  const r = parseRange(rangeHeader, size);
  if (r.kind === 'unsatisfiable') return { kind: 'status', status: 416, headers: { 'content-range': `bytes */${size}` } };
  const start = r.kind === 'partial' ? r.start : 0;
  const end = r.kind === 'partial' ? r.end : size - 1;
  const headers: Record<string, string | number> = {
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
    'content-length': end - start + 1,
  };
  if (r.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${size}`;
  return {
    kind: 'file',
    status: r.kind === 'partial' ? 206 : 200,
    headers,
    range: method === 'HEAD' || size === 0 ? undefined : { start, end },
  };
}
