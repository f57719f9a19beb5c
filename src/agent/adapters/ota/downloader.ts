// SPDX-License-Identifier: UNLICENSED
// HTTPS download into a `.part` file that survives restarts: whatever is already on disk is kept and the
// rest is asked for with `Range: bytes=<have>-`. A server that ignores Range (200) restarts the file.
import { createWriteStream } from 'node:fs';
import { stat, truncate } from 'node:fs/promises';
import { request } from 'node:https';
import { ConnectorError, isErrno } from '../../../shared/errors.js';

export interface DownloadOptions {
  readonly url: string;
  readonly file: string;
  /** Expected total size from the signed manifest; the download never grows past it. */
  readonly size: number;
  /** Extra trust anchors (lab CA); the system store is used otherwise. */
  readonly ca?: string | Buffer;
  readonly onProgress?: (bytes: number, total: number) => void;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface DownloadResult {
  /** Bytes that were already on disk when this call started (0 = fresh download). */
  readonly resumedFrom: number;
  readonly bytes: number;
}

async function sizeOnDisk(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return 0;
    throw e;
  }
}

const MAX_REDIRECTS = 5;

/** Follows up to five https redirects (CDNs, release hosts); the signed sha256 still decides. */
export async function downloadWithResume(o: DownloadOptions): Promise<DownloadResult> {
  let url = o.url;
  for (let hop = 0; ; hop++) {
    const r = await downloadOnce({ ...o, url });
    if (!('redirect' in r)) return r;
    if (hop >= MAX_REDIRECTS) throw new ConnectorError('CK_ERR_OTA_DOWNLOAD', `download ${o.url}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(r.redirect, url);
    if (next.protocol !== 'https:')
      throw new ConnectorError('CK_ERR_OTA_DOWNLOAD', `download ${o.url}: redirect to non-https ${next.href} refused`);
    url = next.href;
  }
}

async function downloadOnce(o: DownloadOptions): Promise<DownloadResult | { redirect: string }> {
  let have = await sizeOnDisk(o.file);
  if (have > o.size) {
    await truncate(o.file, 0);
    have = 0;
  }
  const resumedFrom = have;
  if (have === o.size) return { resumedFrom, bytes: have };
  return new Promise<DownloadResult | { redirect: string }>((resolve, reject) => {
    const fail = (msg: string, cause?: unknown): void =>
      reject(new ConnectorError('CK_ERR_OTA_DOWNLOAD', `download ${o.url}: ${msg}`, cause === undefined ? undefined : { cause }));
    const req = request(
      o.url,
      {
        method: 'GET',
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        ...(o.ca !== undefined ? { ca: o.ca } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let offset: number;
        if (status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== have) {
            res.resume();
            return fail(`server answered 206 with Content-Range "${res.headers['content-range']}" for a request from byte ${have}`);
          }
          offset = have;
        } else if (status === 200) {
          offset = 0;
        } else if ([301, 302, 303, 307, 308].includes(status) && typeof res.headers.location === 'string') {
          res.resume();
          return resolve({ redirect: res.headers.location });
        } else {
          res.resume();
          return fail(`HTTP ${status}`);
        }
        const out = createWriteStream(o.file, offset === 0 ? { flags: 'w' } : { flags: 'r+', start: offset });
        let bytes = offset;
        let overflow = false;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > o.size) {
            overflow = true;
            res.destroy();
            return;
          }
          out.write(chunk);
          o.onProgress?.(bytes, o.size);
        });
        res.on('error', (e) => out.end(() => fail('connection lost', e)));
        res.on('end', () => {
          out.end(() => {
            if (overflow) return fail(`server sent more than the ${o.size} bytes the manifest declares`);
            if (bytes !== o.size) return fail(`got ${bytes} of ${o.size} bytes`);
            resolve({ resumedFrom: offset === 0 ? 0 : resumedFrom, bytes });
          });
        });
        res.on('close', () => {
          if (overflow) out.end(() => fail(`server sent more than the ${o.size} bytes the manifest declares`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new ConnectorError('CK_ERR_OTA_DOWNLOAD', 'timeout')));
    req.on('error', (e) => fail(e.message, e));
    req.end();
  });
}
