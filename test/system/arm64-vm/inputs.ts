// SPDX-License-Identifier: UNLICENSED
// The VM's pinned inputs (vm.lock.json) and the agent's (board/nanopi-r3s/image.lock.json), brought onto
// the disk by the image build's own fetcher: the same cache (.cache/image-inputs), the same hash checks,
// the same "what is missing and where to put it" error. CK_IMAGE_MIRROR=DIR is the image build's --mirror;
// CK_IMAGE_OFFLINE=1 its --offline.
//
// The pinned kernel comes from Debian's security pool, which keeps only the current version. When its URL
// is gone, the kernel `linux-image-arm64` depends on now is taken through apt instead (apt checks it against
// the signed indexes), and its version and sha256 are reported so that the lock can be updated.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchInputs, type FetchOptions } from '../../../src/image/adapters/fetcher.js';
import { ImageError } from '../../../src/image/core/errors.js';
import { mirrorPath, parseImageLock, pickInputs, type LockedInput } from '../../../src/image/core/lock.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const VM_LOCK = fileURLToPath(new URL('./vm.lock.json', import.meta.url));
export const IMAGE_LOCK = join(REPO, 'board/nanopi-r3s/image.lock.json');

export interface VmInput {
  name: string;
  package: string;
  version: string;
  url: string;
  file: string;
  sha256: string;
  size: number;
  /** A Debian package whose current dependency replaces this one when the pinned file is gone. */
  fallback?: string;
}

export interface ResolvedVmInput {
  path: string;
  package: string;
  version: string;
  sha256: string;
  /** Set when the pinned file was gone and apt's current one was taken: say so in the test log. */
  replaced?: string;
}

export function fetchOptions(): FetchOptions {
  const mirror = process.env['CK_IMAGE_MIRROR'];
  return {
    cacheDir: join(REPO, '.cache/image-inputs'),
    mirrorDir: mirror ? mirror : undefined,
    offline: process.env['CK_IMAGE_OFFLINE'] === '1',
    retryDelayMs: 500,
  };
}

export function readVmLock(path = VM_LOCK): VmInput[] {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { inputs?: VmInput[] };
  const inputs = doc.inputs ?? [];
  for (const i of inputs) {
    if (!/^[0-9a-f]{64}$/.test(i.sha256) || !i.url || !i.file || !i.package)
      throw new ImageError('lock-invalid', `${path}: input ${i.name} needs package, url, file and a sha256`);
  }
  return inputs;
}

// The fetcher reads name, url, sha256 and size only; the role is the closest one the image lock has.
const asLocked = (i: VmInput): LockedInput => ({
  name: i.name,
  role: 'glibc-runtime',
  version: i.version,
  url: i.url,
  file: i.file,
  sha256: i.sha256,
  size: i.size,
});

const sh = (cmd: string, args: string[], cwd?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });

/** The package `meta` (e.g. linux-image-arm64) depends on today, fetched by apt-get download into the cache. */
function aptCurrent(meta: string, cacheDir: string): ResolvedVmInput {
  if (!sh('dpkg', ['--print-foreign-architectures']).split('\n').includes('arm64')) {
    sh('dpkg', ['--add-architecture', 'arm64']);
    sh('apt-get', ['update', '-qq']);
  }
  const deps = sh('apt-cache', ['depends', `${meta}:arm64`]);
  const pkg = /Depends: (linux-image-[^\s:]+)/.exec(deps)?.[1];
  if (!pkg) throw new Error(`apt-cache depends ${meta}:arm64 names no kernel package:\n${deps}`);
  // 'URL' file size SHA256:hex; apt takes the hash from the Packages index its signed Release covers.
  const uri = /^'([^']+)' (\S+) (\d+) SHA256:([0-9a-f]{64})/m.exec(sh('apt-get', ['download', '--print-uris', `${pkg}:arm64`]));
  if (!uri) throw new Error(`apt-get download --print-uris ${pkg}:arm64 printed no SHA256`);
  const [, url, , , sum] = uri as unknown as [string, string, string, string, string];
  const dest = join(cacheDir, mirrorPath({ url }));
  const version = /_([^_]+)_arm64\.deb$/.exec(dest)?.[1]?.replace('%3a', ':') ?? 'unknown';
  if (!existsSync(dest) || sha256File(dest) !== sum) {
    const tmp = mkdtempSync(join(tmpdir(), 'ck-a64-apt-'));
    try {
      sh('apt-get', ['download', '-qq', `${pkg}:arm64`], tmp);
      const got = readdirSync(tmp).find((f) => f.endsWith('.deb'));
      if (!got) throw new Error(`apt-get download ${pkg}:arm64 wrote no .deb`);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(join(tmp, got), dest);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const have = sha256File(dest);
  if (have !== sum) throw new ImageError('input-tampered', `${pkg} from apt has sha256 ${have}, the signed index says ${sum}`);
  return { path: dest, package: pkg, version, sha256: have, replaced: `${pkg} ${version} sha256 ${have} (${url})` };
}

export function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

const HINT =
  'For this test: CK_IMAGE_MIRROR=DIR is the mirror (the same layout), CK_IMAGE_OFFLINE=1 never touches the network; ' +
  'the files go to .cache/image-inputs (docs/arm64-vm.md).';

/** The fetcher's "missing" error with the test's own way to pass a mirror added. */
async function withHint<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ImageError && e.reason === 'input-missing')
      throw new ImageError('input-missing', `${e.message}\n${HINT}`, { cause: e });
    throw e;
  }
}

/** Every VM input by name. A missing one fails with the fetcher's message (what, from where, where to put it). */
export async function vmInputs(inputs = readVmLock(), opts = fetchOptions()): Promise<Map<string, ResolvedVmInput>> {
  const out = new Map<string, ResolvedVmInput>();
  const missing: string[] = [];
  for (const i of inputs) {
    try {
      const got = await fetchInputs([asLocked(i)], opts);
      const r = got.get(i.name);
      if (r) out.set(i.name, { path: r.path, package: i.package, version: i.version, sha256: r.sha256 });
    } catch (e) {
      if (!(e instanceof ImageError) || e.reason !== 'input-missing') throw e;
      // Only a pinned file the network no longer has is replaced; offline it stays missing.
      if (i.fallback && !opts.offline && /HTTP 404/.test(e.message)) out.set(i.name, aptCurrent(i.fallback, opts.cacheDir));
      else missing.push(e.message);
    }
  }
  if (missing.length > 0) throw new ImageError('input-missing', `${missing.join('\n')}\n${HINT}`);
  return out;
}

export interface AgentInputs {
  nodeHost: string;
  nodeTarget: string;
  postject: string;
  glibc: string[];
}

/** The agent binary's inputs from the image lock (the Node, postject and glibc the image build uses). */
export async function agentInputs(opts = fetchOptions()): Promise<AgentInputs> {
  const lock = parseImageLock(readFileSync(IMAGE_LOCK, 'utf8'));
  const b = pickInputs(lock, lock.defaults.openwrt, lock.defaults.node);
  const wanted = [b.nodeHost, b.nodeTarget, b.postject, ...b.glibc];
  const got = await withHint(() => fetchInputs(wanted, opts));
  const at = (i: LockedInput): string => got.get(i.name)?.path ?? '';
  return { nodeHost: at(b.nodeHost), nodeTarget: at(b.nodeTarget), postject: at(b.postject), glibc: b.glibc.map(at) };
}
