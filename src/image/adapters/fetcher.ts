// SPDX-License-Identifier: UNLICENSED
// Brings every pinned input onto the disk: from the cache, else from a mirror directory, else (online)
// from its URL with HTTP Range resume. Nothing is handed out before its hash matches the lock file.
// Offline, every missing file is reported in one error, with the place to put it.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger, type Logger } from '../../shared/log.js';
import { ImageError } from '../core/errors.js';
import { mirrorPath, type LockedInput } from '../core/lock.js';

export interface FetchProgress {
  readonly name: string;
  readonly received: number;
  /** Total bytes when the server or lock file says; undefined otherwise. */
  readonly total: number | undefined;
}

export interface FetchOptions {
  readonly cacheDir: string;
  readonly mirrorDir?: string | undefined;
  /** Never touch the network: report what is missing instead. */
  readonly offline: boolean;
  readonly log?: Logger;
  readonly onProgress?: (p: FetchProgress) => void;
  /** Attempts per file; each retry resumes where the previous one stopped. */
  readonly attempts?: number;
  /** Pause before retry n is n times this (default 1000 ms). */
  readonly retryDelayMs?: number;
  readonly idleTimeoutMs?: number;
}

export interface ResolvedInput {
  readonly input: LockedInput;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly source: 'cache' | 'mirror' | 'download';
}

interface Digest {
  sha256: string;
  sha512: string;
  size: number;
}

export async function digestFile(path: string): Promise<Digest> {
  const a = createHash('sha256');
  const b = createHash('sha512');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    const c = chunk as Buffer;
    a.update(c);
    b.update(c);
    size += c.length;
  }
  return { sha256: a.digest('hex'), sha512: b.digest('base64'), size };
}

/** Why the bytes are not the pinned ones, or undefined when they are. */
function mismatch(input: LockedInput, d: Digest): string | undefined {
  if (input.sha256 && d.sha256 !== input.sha256) return `sha256 is ${d.sha256}, the lock file pins ${input.sha256}`;
  if (input.integrity && `sha512-${d.sha512}` !== input.integrity)
    return `sha512 is sha512-${d.sha512}, the lock file pins ${input.integrity}`;
  if (input.size !== undefined && d.size !== input.size) return `size is ${d.size} bytes, the lock file pins ${input.size}`;
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function missingReport(missing: readonly LockedInput[], opts: FetchOptions, why: ReadonlyMap<string, string>): string {
  const where = opts.mirrorDir ?? '<mirror>';
  const lines = missing.map((i) => {
    const reason = why.get(i.name);
    // A checksum list and its signature are pinned by the key, not by a hash: say so instead of a sha256.
    const pin = i.sha256
      ? `, sha256 ${i.sha256}`
      : i.signature
        ? `, no hash pinned: checked with ${i.signature.sig} and key ${i.signature.key}`
        : i.role === 'imagebuilder-sums-sig'
          ? ', no hash pinned: checked against the pinned key'
          : '';
    return (
      `  - ${i.name} (${i.file}${pin})\n` +
      `      from: ${i.url}\n` +
      `      put it at: ${join(where, mirrorPath(i))}  (or ${join(opts.cacheDir, mirrorPath(i))})` +
      (reason ? `\n      problem: ${reason}` : '')
    );
  });
  return (
    `${missing.length} build input(s) missing${opts.offline ? ' (offline)' : ''}:\n${lines.join('\n')}\n` +
    `Fetch them on a connected machine (\`wget -x URL\` run inside DIR creates this layout) and pass --mirror DIR.`
  );
}

export async function fetchInputs(inputs: readonly LockedInput[], opts: FetchOptions): Promise<Map<string, ResolvedInput>> {
  const log = opts.log ?? silentLogger;
  const found = new Map<string, ResolvedInput>();
  const missing: LockedInput[] = [];
  const why = new Map<string, string>();

  for (const input of inputs) {
    const rel = mirrorPath(input);
    const cached = join(opts.cacheDir, rel);
    if (await exists(cached)) {
      const d = await digestFile(cached);
      const bad = mismatch(input, d);
      if (!bad) {
        found.set(input.name, { input, path: cached, sha256: d.sha256, size: d.size, source: 'cache' });
        continue;
      }
      // A cache entry is ours to throw away; it is fetched again below.
      log.warn('cached input does not match the lock file; discarding it', { input: input.name, problem: bad });
      await rm(cached, { force: true });
    }
    if (opts.mirrorDir !== undefined) {
      const mirrored = join(opts.mirrorDir, rel);
      if (await exists(mirrored)) {
        const d = await digestFile(mirrored);
        const bad = mismatch(input, d);
        if (bad)
          throw new ImageError(
            'input-tampered',
            `input ${input.name} in the mirror (${mirrored}) is not the pinned file: ${bad}. Refusing to use it.`,
          );
        found.set(input.name, { input, path: mirrored, sha256: d.sha256, size: d.size, source: 'mirror' });
        continue;
      }
    }
    missing.push(input);
  }

  if (missing.length > 0 && opts.offline) {
    throw new ImageError('input-missing', missingReport(missing, opts, why));
  }

  const failed: LockedInput[] = [];
  for (const input of missing) {
    try {
      found.set(input.name, await download(input, opts, log));
    } catch (e) {
      if (e instanceof ImageError && e.reason === 'input-tampered') throw e;
      why.set(input.name, (e as Error).message);
      failed.push(input);
    }
  }
  if (failed.length > 0) throw new ImageError('input-missing', missingReport(failed, opts, why));
  return found;
}

async function download(input: LockedInput, opts: FetchOptions, log: Logger): Promise<ResolvedInput> {
  const final = join(opts.cacheDir, mirrorPath(input));
  const part = `${final}.part`;
  await mkdir(dirname(final), { recursive: true });
  const attempts = opts.attempts ?? 3;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await downloadOnce(input, part, opts);
      lastError = undefined;
      break;
    } catch (e) {
      lastError = e as Error;
      if (isPermanent(lastError)) break;
      log.warn('download interrupted; will resume', { input: input.name, attempt, error: lastError.message });
      if (attempt < attempts) await delay((opts.retryDelayMs ?? 1000) * attempt);
    }
  }
  if (lastError) throw lastError;
  const d = await digestFile(part);
  const bad = mismatch(input, d);
  if (bad) {
    await rm(part, { force: true });
    throw new ImageError(
      'input-tampered',
      `input ${input.name} downloaded from ${input.url} is not the pinned file: ${bad}. Refusing to use it.`,
    );
  }
  await rename(part, final);
  log.info('input downloaded', { input: input.name, bytes: d.size });
  return { input, path: final, sha256: d.sha256, size: d.size, source: 'download' };
}

/** Failures a retry cannot fix: unknown host, refused route, a URL the server does not have. */
function isPermanent(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /^HTTP (4\d\d) /.test(e.message);
}

function request(url: string, headers: Record<string, string>, idleMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(url, { headers }, resolve);
    req.setTimeout(idleMs, () => req.destroy(new ImageError('download-failed', `no data from ${url} for ${idleMs} ms`)));
    req.on('error', reject);
  });
}

async function downloadOnce(input: LockedInput, part: string, opts: FetchOptions): Promise<void> {
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  let have = 0;
  try {
    have = (await stat(part)).size;
  } catch {
    have = 0;
  }
  let url = input.url;
  let res: IncomingMessage | undefined;
  for (let hop = 0; hop < 6; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'connector-kit-image-build' };
    if (have > 0) headers['range'] = `bytes=${have}-`;
    res = await request(url, headers, idleMs);
    const loc = res.headers.location;
    if (res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && loc) {
      res.resume();
      url = new URL(loc, url).href;
      continue;
    }
    break;
  }
  if (!res) throw new ImageError('download-failed', `too many redirects from ${input.url}`);
  const status = res.statusCode ?? 0;
  if (status === 416 && have > 0) {
    // The partial file is already whole (or larger than the file); start over to be sure of it.
    res.resume();
    await rm(part, { force: true });
    throw new ImageError('download-failed', 'server refused the resume range; restarting from zero');
  }
  if (status !== 200 && status !== 206) {
    res.resume();
    throw new ImageError('download-failed', `HTTP ${status} from ${url}`);
  }
  const append = status === 206 && have > 0;
  if (!append) have = 0;
  const len = Number(res.headers['content-length']);
  const total = Number.isFinite(len) && len > 0 ? have + len : input.size;
  let received = have;
  // Not stream.pipeline: on a cut it destroys the file stream and drops buffered bytes, and the resume
  // then starts earlier (or from zero). Here the file is always ended, so every byte received is kept.
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(part, { flags: append ? 'a' : 'w' });
    let failed: Error | undefined;
    const fail = (e: Error): void => {
      if (failed) return;
      failed = new ImageError('download-failed', `connection cut after ${received} bytes: ${e.message}`, { cause: e });
      out.end();
    };
    res.on('data', (c: Buffer) => {
      received += c.length;
      opts.onProgress?.({ name: input.name, received, total });
      if (!out.write(c)) {
        res.pause();
        out.once('drain', () => res.resume());
      }
    });
    res.on('end', () => out.end());
    res.on('aborted', () => fail(new ImageError('download-failed', 'aborted')));
    res.on('error', fail);
    out.on('error', (e) => {
      failed ??= e;
      res.destroy();
    });
    out.on('close', () => (failed ? reject(failed) : resolve()));
  });
  if (total !== undefined && received < total)
    throw new ImageError('download-failed', `connection cut after ${received} of ${total} bytes`);
}
