// SPDX-License-Identifier: UNLICENSED
// Adapter around an unpacked OpenWrt ImageBuilder: unpack the tarball, run `make info`, `make manifest`
// and `make image`, dropping root to an unprivileged build user first (the IB is not meant to run as
// root and runs package scripts on the host), and turn its known failures into ImageErrors.
import { spawn } from 'node:child_process';
import { chown, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import type { BoardConfig } from '../core/board.js';
import { ImageError } from '../core/errors.js';
import type { OpenWrtSeries } from '../core/series.js';
import { checkInfo, classifyIbOutput, parseMakeInfo, parseManifest, type IbInfo, type ManifestEntry } from '../core/ib-output.js';

export interface BuildUser {
  readonly uid: number;
  readonly gid: number;
}

/** nobody/nogroup on Debian; used when the build runs as root and no --build-user was given. */
export const DEFAULT_BUILD_USER: BuildUser = { uid: 65534, gid: 65534 };

export interface ImageBuilderOptions {
  readonly ibDir: string;
  /** Run make as this user (required when the process is root). */
  readonly user?: BuildUser | undefined;
  readonly sourceDateEpoch: number;
  readonly log?: Logger;
  readonly timeoutMs?: number;
}

/** Unpacks the IB tarball (zstd, xz or gzip by name) into `dest` and returns the IB's top directory. */
export async function unpackImageBuilder(tarball: string, dest: string): Promise<string> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  const z = tarball.endsWith('.zst') ? '--zstd' : tarball.endsWith('.xz') ? '--xz' : '--gzip';
  await exec('tar', [z, '-xf', tarball, '-C', dest, '--no-same-owner']);
  const top = (await readdir(dest)).filter((n) => !n.startsWith('.'));
  if (top.length !== 1)
    throw new ImageError('ib-failed', `ImageBuilder tarball ${tarball} should hold one top directory, found ${top.length}`);
  const dir = join(dest, top[0] as string);
  try {
    await stat(join(dir, 'Makefile'));
  } catch {
    throw new ImageError('ib-failed', `ImageBuilder tarball ${tarball} has no Makefile in ${top[0] as string}/`);
  }
  return dir;
}

/** Hands a tree to the build user so make can write into it. */
export async function chownTree(path: string, user: BuildUser): Promise<void> {
  await exec('chown', ['-R', `${user.uid}:${user.gid}`, path]);
}

interface MakeResult {
  code: number;
  output: string;
}

function runMake(opts: ImageBuilderOptions, args: readonly string[]): Promise<MakeResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: opts.ibDir,
    LANG: 'C',
    LC_ALL: 'C',
    TZ: 'UTC',
    SOURCE_DATE_EPOCH: String(opts.sourceDateEpoch),
  };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const user = opts.user ?? (root ? DEFAULT_BUILD_USER : undefined);
  return new Promise((resolve, reject) => {
    const child = spawn('make', ['-C', opts.ibDir, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    const chunks: Buffer[] = [];
    const log = opts.log ?? silentLogger;
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    const take = (b: Buffer): void => {
      chunks.push(b);
      for (const line of b.toString('utf8').split('\n')) if (line.trim()) log.debug('ib', { line: line.slice(0, 300) });
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new ImageError('host-tool-missing', `cannot run make for the ImageBuilder: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? 128, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function makeInfo(opts: ImageBuilderOptions, board: BoardConfig): Promise<IbInfo> {
  const r = await runMake(opts, ['info']);
  const known = classifyIbOutput(r.output, board.rootfsPartsizeMib);
  if (known) throw known;
  if (r.code !== 0) throw new ImageError('ib-failed', `make info failed (exit ${r.code}):\n${tail(r.output)}`);
  const info = parseMakeInfo(r.output);
  checkInfo(info, { target: board.target, profile: board.profile, boardName: board.boardName });
  return info;
}

export interface ImageRequest {
  readonly packages: readonly string[];
  readonly filesDir: string;
  readonly binDir: string;
  readonly extraImageName: string;
  readonly disabledServices: readonly string[];
}

function commonArgs(board: BoardConfig, req: ImageRequest): string[] {
  return [`PROFILE=${board.profile}`, `PACKAGES=${req.packages.join(' ')}`];
}

export async function makeManifest(opts: ImageBuilderOptions, board: BoardConfig, req: ImageRequest): Promise<ManifestEntry[]> {
  const r = await runMake(opts, ['manifest', ...commonArgs(board, req), 'STRIP_ABI=1']);
  const known = classifyIbOutput(r.output, board.rootfsPartsizeMib);
  if (known) throw known;
  if (r.code !== 0) throw new ImageError('ib-failed', `make manifest failed (exit ${r.code}):\n${tail(r.output)}`);
  return parseManifest(r.output);
}

export async function makeImage(opts: ImageBuilderOptions, board: BoardConfig, req: ImageRequest): Promise<string> {
  const args = [
    'image',
    ...commonArgs(board, req),
    `FILES=${req.filesDir}`,
    `ROOTFS_PARTSIZE=${board.rootfsPartsizeMib}`,
    `BIN_DIR=${req.binDir}`,
    `EXTRA_IMAGE_NAME=${req.extraImageName}`,
  ];
  if (req.disabledServices.length > 0) args.push(`DISABLED_SERVICES=${req.disabledServices.join(' ')}`);
  const r = await runMake(opts, args);
  // Size problems only print a warning and make still exits 0, so look at the output either way.
  const known = classifyIbOutput(r.output, board.rootfsPartsizeMib);
  if (known) throw known;
  if (r.code !== 0) throw new ImageError('ib-failed', `make image failed (exit ${r.code}):\n${tail(r.output)}`);
  return r.output;
}

export async function prepareForUser(paths: readonly string[], user: BuildUser | undefined): Promise<void> {
  if (!user) return;
  for (const p of paths) {
    await mkdir(p, { recursive: true });
    await chownTree(p, user);
  }
}

export async function chownBack(path: string): Promise<void> {
  if (typeof process.getuid !== 'function') return;
  await chown(path, process.getuid(), process.getgid?.() ?? 0).catch(() => undefined);
  await exec('chown', ['-R', `${process.getuid()}:${process.getgid?.() ?? 0}`, path], { allowFailure: true });
}

const isDir = (p: string): Promise<boolean> =>
  stat(p).then(
    (st) => st.isDirectory(),
    () => false,
  );

/**
 * Points the ImageBuilder's remote package feeds at the same host/path below a mirror directory, so
 * `make image` installs packages without the network (offline: every feed; online: only the feeds the
 * mirror has). 24.10 (opkg): `repositories.conf` lines `src/gz NAME URL` become `file://DIR`. 25.12
 * (apk): `repositories` lines `URL/packages.adb` become the absolute path of the mirrored index;
 * commented-out feeds stay commented. The package manager still checks each feed's index signature
 * against the keys inside the (pinned) ImageBuilder. Returns the feed directories it now expects.
 */
export async function pointFeedsAtMirror(ibDir: string, mirrorDir: string, onlyPresent: boolean, series: OpenWrtSeries): Promise<string[]> {
  const file = join(ibDir, series.feedsFile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ImageError(
      'ib-failed',
      `the OpenWrt ${series.series} ImageBuilder has no ${series.feedsFile}: is the tarball of another series? (${(e as Error).message})`,
      { cause: e },
    );
  }
  const feeds: string[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    let dir: string;
    let rewritten: string;
    if (series.feedsFile === 'repositories.conf') {
      const m = /^(src\/gz\s+\S+\s+)https?:\/\/(\S+?)\/*$/.exec(line);
      if (!m) continue;
      dir = join(mirrorDir, m[2] as string);
      rewritten = `${m[1] as string}file://${dir}`;
    } else {
      const m = /^\s*https?:\/\/(\S+)\/(packages\.adb)\s*$/.exec(line);
      if (!m) continue;
      dir = join(mirrorDir, m[1] as string);
      rewritten = join(dir, m[2] as string);
    }
    if (onlyPresent && !(await isDir(dir))) continue;
    feeds.push(dir);
    lines[i] = rewritten;
  }
  await writeFile(file, lines.join('\n'));
  return feeds;
}

/** Fails when the build user cannot read the given directories (e.g. a mirror under /root). */
export async function checkReadableBy(user: BuildUser | undefined, dirs: readonly string[]): Promise<void> {
  if (!user || dirs.length === 0) return;
  const r = await new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['-c', 'for d; do [ -r "$d" ] && [ -x "$d" ] || echo "$d"; done', 'check', ...dirs], {
      uid: user.uid,
      gid: user.gid,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
  const bad = r.split('\n').filter(Boolean);
  if (bad.length > 0) {
    throw new ImageError(
      'mirror-unreadable',
      `the ImageBuilder runs as ${user.uid}:${user.gid} and cannot read: ${bad.join(', ')}. Make the mirror world-readable (chmod -R o+rX, including its parent directories) or pass --build-user.`,
    );
  }
}
