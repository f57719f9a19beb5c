// SPDX-License-Identifier: UNLICENSED
// The device's TAP addon: scripts/build-addon-arm64.sh must give an AArch64 shared object that needs only
// the C library and leaves only napi_*, uv_* and libc symbols for node to provide (OpenSSL's, for the
// datagram AEAD, are looked up at run time). Running it inside an
// arm64 node under qemu belongs to the image build (it has the arm64 node); here the arm64 dynamic loader
// under qemu-user loads it and finds the N-API entry point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/tmp.js';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const run = async (cmd: string, ...args: string[]): Promise<string> => (await execFileP(cmd, args, { cwd: repo })).stdout;

const LIBC = new Set([
  'close',
  'free',
  'calloc',
  'ioctl',
  'memcpy',
  'open',
  'read',
  'write',
  'writev',
  'setsockopt',
  'getsockopt',
  'snprintf',
  'strerror',
  '__errno_location',
  // The datagram channel's AEAD (OpenSSL looked up at run time) and batched UDP socket.
  'memset',
  'malloc',
  'dlsym',
  'socket',
  'bind',
  'connect',
  'getsockname',
  'recvmsg',
  'sendmmsg',
  'inet_pton',
  // The send threads (tx-ring.c) name themselves; their lock and condition come from uv_*.
  'prctl',
]);
// Weak references the toolchain's crt files always add; unresolved weak symbols are fine.
const CRT_WEAK = new Set(['__cxa_finalize', '__gmon_start__', '_ITM_deregisterTMCloneTable', '_ITM_registerTMCloneTable']);

const PROBE_C = `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
  if (!h) { printf("dlopen failed: %s\\n", dlerror()); return 1; }
  printf("entry=%s\\n", dlsym(h, "napi_register_module_v1") ? "yes" : "no");
  return 0;
}
`;

test('build-addon-arm64.sh produces an AArch64 addon that needs only libc, napi and uv', async (t) => {
  const dir = tempDir(t, 'ck-tap-arm64-').dir;
  const out = join(dir, 'tap.node');
  await run('bash', 'scripts/build-addon-arm64.sh', out);

  assert.match(await run('file', '-b', out), /ELF 64-bit LSB shared object, ARM aarch64/);
  assert.match(await run('readelf', '-h', out), /Machine:\s+AArch64/);
  const needed = [...(await run('readelf', '-d', out)).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  assert.deepEqual(needed, ['libc.so.6']);

  const syms = (await run('readelf', '--dyn-syms', '-W', out)).split('\n').map((l) => l.trim().split(/\s+/));
  const undefinedSyms = syms.filter((c) => c[6] === 'UND' && c[7]).map((c) => (c[7] ?? '').replace(/@.*/, ''));
  const stray = undefinedSyms.filter((s) => !/^(napi|uv)_\w+$/.test(s) && !LIBC.has(s) && !CRT_WEAK.has(s));
  assert.deepEqual(stray, [], 'only napi_*, uv_* and libc symbols are left for the loader');
  assert.ok(undefinedSyms.includes('uv_poll_start') && undefinedSyms.includes('napi_make_callback'));
  assert.ok(!undefinedSyms.some((s) => s.startsWith('EVP_')), 'OpenSSL is not linked: a node without it must still load the TAP calls');
  const exported = syms.filter((c) => c[4] === 'GLOBAL' && c[6] !== 'UND').map((c) => c[7]);
  assert.ok(exported.includes('napi_register_module_v1'), `N-API entry point exported: ${exported.join(' ')}`);
  assert.ok(!exported.some((s) => s?.startsWith('js_')), 'internal functions stay hidden');
});

test('the arm64 dynamic loader under qemu-user loads the addon and finds its N-API entry point', async (t) => {
  const dir = tempDir(t, 'ck-tap-arm64-').dir;
  const out = join(dir, 'tap.node');
  await run('bash', 'scripts/build-addon-arm64.sh', out);
  await writeFile(join(dir, 'probe.c'), PROBE_C);
  await run('aarch64-linux-gnu-gcc', '-O2', '-o', join(dir, 'probe'), join(dir, 'probe.c'));
  // RTLD_LAZY: napi_* and uv_* come from node at run time; the loader must still map it and resolve libc.
  const r = await run('qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', join(dir, 'probe'), out);
  assert.equal(r.trim(), 'entry=yes');
});
