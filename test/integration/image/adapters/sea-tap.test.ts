// SPDX-License-Identifier: UNLICENSED
// The SEA packaging path (bundle -> blob -> postject -> patchelf, glibc runtime, TAP addon as an asset)
// with a fixture entry that opens a TAP through the agent's adapter: the arm64 binary, run by
// qemu-aarch64 in a chroot with no glibc and inside a test network namespace, creates a real TAP there.
// Root only (namespace, chroot, /dev/net/tun node); uses the pinned inputs in .cache/image-inputs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { assembleGlibcRuntime } from '../../../../src/image/adapters/glibc-runtime.js';
import { mirrorPath, parseImageLock, type LockedInput } from '../../../../src/image/core/lock.js';
import { bundleAgent, buildSea, launcherSource, unpackNpmTarball } from '../../../../src/image/adapters/sea.js';
import { isRoot, netnsScope } from '../../../helpers/netns.js';
import { REAL_CACHE, REAL_LOCK, REPO, realRuntimeInputs } from './stand-in.js';
import { skipOrFail, skipUnlessCi } from '../../../helpers/skip.js';

let dir: string;
let root: string;
const needsRoot = skipUnlessCi(!isRoot() && 'needs root (network namespace, chroot)');
let skip: string | false = needsRoot;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'ck-sea-tap-'));
  try {
    await realRuntimeInputs();
  } catch (e) {
    skip = `pinned inputs unavailable: ${(e as Error).message.split('\n')[0] ?? ''}`;
    return;
  }
  const lock = parseImageLock(readFileSync(REAL_LOCK, 'utf8'));
  const path = (role: string): string => join(REAL_CACHE, mirrorPath(lock.inputs.find((i) => i.role === role) as LockedInput));
  const host = await unpackNpmTarball(path('node-host'), join(dir, 'host'));
  const target = await unpackNpmTarball(path('node-target'), join(dir, 'target'));
  const postject = await unpackNpmTarball(path('postject'), join(dir, 'postject'));
  const addon = join(dir, 'tap.node');
  execFileSync('bash', [join(REPO, 'scripts/build-addon-arm64.sh'), addon], {
    cwd: REPO,
    env: { ...process.env, NODE_INCLUDE: join(host, 'include/node') },
  });
  root = join(dir, 'root');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'dev/net'), { recursive: true });
  execFileSync('mknod', [join(root, 'dev/net/tun'), 'c', '10', '200']);
  copyFileSync('/usr/bin/qemu-aarch64-static', join(root, 'qemu-aarch64-static'));
  await assembleGlibcRuntime(
    lock.inputs.filter((i) => i.role === 'glibc-runtime').map((i) => join(REAL_CACHE, mirrorPath(i))),
    join(dir, 'glibc'),
    join(root, 'usr/lib/connector'),
  );
  const bundle = await bundleAgent(join(REPO, 'test/integration/image/adapters/fixtures/tap-probe.ts'), REPO, '0.0.0-test');
  await buildSea({
    workDir: join(dir, 'sea'),
    hostNode: join(host, 'bin/node'),
    targetNode: join(target, 'bin/node'),
    postjectDir: postject,
    launcher: launcherSource(bundle),
    tapAddon: addon,
    bundleCode: bundle.code,
    runtimeDir: '/usr/lib/connector',
    out: join(root, 'usr/bin/tap-probe'),
    strip: 'aarch64-linux-gnu-strip',
  });
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'the arm64 SEA binary creates a TAP in a namespace under qemu-aarch64, with no glibc in its root, and starts a worker thread from itself',
  { skip: needsRoot },
  async (t) => {
    if (skip) return skipOrFail(t, skip);
    const scope = netnsScope(t, 'ckimg');
    const ns = await scope.ns('dev');
    const ifname = scope.ifname('tap');
    const child = spawn('ip', ['netns', 'exec', ns, 'chroot', root, '/qemu-aarch64-static', '/usr/bin/tap-probe', ifname], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    assert.equal(first.value, `opened ${ifname} on arm64`, stderr);
    const link = execFileSync('ip', ['-n', ns, '-d', 'link', 'show', ifname], { encoding: 'utf8' });
    assert.match(link, /tun type tap/, 'a TAP device exists in the test namespace');
    // A worker thread from the bundle the binary keeps (as the agent's datagram lanes start), with the addon.
    assert.equal((await lines.next()).value, 'worker: native AEAD on arm64', stderr);
    child.stdin.end();
    assert.equal((await lines.next()).value, 'closed');
    await new Promise((r) => child.once('close', r));
    const gone = execFileSync('ip', ['-n', ns, 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!gone.includes(ifname), 'the non-persistent TAP disappears when the agent closes it');
  },
);
