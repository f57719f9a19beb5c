// SPDX-License-Identifier: UNLICENSED
// One firmware build, start to finish: pinned inputs -> signature of OpenWrt's sha256sums -> agent SEA
// binary + glibc runtime -> rootfs overlay -> ImageBuilder (info, manifest, image) as an unprivileged
// user -> result checks -> outputs (image, .sha256, build manifest, SBOM, overlay tarball, agent binary,
// optionally the signed OTA release). Wiring only: each step is an adapter, each verdict a core module.
// `runBuildImage` is `npm run build-image` (scripts/build-image.ts parses its command line).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../shared/errors.js';
import { exec, execSync } from '../shared/exec.js';
import { loggerFromEnv, silentLogger, type Logger } from '../shared/log.js';
import { encodeUsignSignature, parseUsignPublicKey, parseUsignSecretKey, signUsign, verifyUsign } from '../shared/usign/index.js';
import { encodeReleaseManifest } from '../shared/ota/manifest.js';
import { parseBoardConfig, type BoardConfig } from './core/board.js';
import { checkHostNode, checkRuntimeLibs } from './core/build-checks.js';
import { ImageError } from './core/errors.js';
import { allBuildInputs, parseImageLock, pickInputs, type BuildInputs, type LockedInput } from './core/lock.js';
import { encodeBuildManifest, encodeSbom } from './core/manifest.js';
import { checkOverlay, overlayDigest, stampHeadends, stampMinTime } from './core/overlay.js';
import { imageRelease, releaseSignatureComment } from './core/release.js';
import { fetchInputs, type FetchProgress, type ResolvedInput } from './adapters/fetcher.js';
import { assembleGlibcRuntime, RUNTIME_LIBS } from './adapters/glibc-runtime.js';
import {
  checkReadableBy,
  DEFAULT_BUILD_USER,
  makeImage,
  makeInfo,
  makeManifest,
  pointFeedsAtMirror,
  prepareForUser,
  unpackImageBuilder,
  type BuildUser,
} from './adapters/imagebuilder.js';
import { checkScripts, copyTree, listOverlay, normaliseOverlay, packOverlay } from './adapters/overlay.js';
import { checkBuildResult, dropImageSignatures } from './adapters/result-check.js';
import { bundleAgent, buildSea, elfNeeded, launcherSource, unpackNpmTarball } from './adapters/sea.js';
import { gpgvVerify, verifyImageBuilder, type GpgVerify, type UsignVerify } from './adapters/signature.js';
import { checkSeriesManifest, seriesPackages } from './core/series.js';

export interface BuildOptions {
  readonly repoRoot: string;
  readonly boardDir: string;
  readonly lockFile: string;
  readonly openwrt?: string | undefined;
  readonly node?: string | undefined;
  readonly cacheDir: string;
  readonly mirrorDir?: string | undefined;
  readonly offline: boolean;
  readonly outDir: string;
  /** Scratch space, emptied at the start of each build. */
  readonly workDir: string;
  readonly sourceDateEpoch: number;
  /** tls://host:port of the DC headends, written into /etc/config/connector. */
  readonly headends?: readonly string[];
  readonly agentEntry: string;
  /** A prebuilt arm64 tap.node; when undefined it is cross-compiled with scripts/build-addon-arm64.sh. */
  readonly tapAddon?: string | 'none' | undefined;
  /** Merged over firmware/rootfs-overlay (trust anchors, OTA public keys). */
  readonly extraFilesDir?: string | undefined;
  readonly buildUser?: BuildUser | undefined;
  readonly verify: UsignVerify;
  /** OpenPGP check of 25.12's sha256sums.asc (default: gpgv). */
  readonly gpgVerify?: GpgVerify;
  readonly kit: { readonly name: string; readonly version: string; readonly commit: string };
  readonly release?: { readonly secretKeyFile: string; readonly urlBase: string } | undefined;
  readonly log?: Logger;
  readonly onProgress?: (p: FetchProgress) => void;
}

export interface BuildResult {
  readonly image: string;
  readonly imageSha256: string;
  readonly outputs: readonly { file: string; sha256: string; size: number }[];
  readonly board: BoardConfig;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new ImageError(what === 'lock file' ? 'lock-invalid' : 'board-invalid', `cannot read ${what} ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

interface AgentAndOverlay {
  readonly overlay: string;
  readonly agentOut: string;
  readonly entries: Awaited<ReturnType<typeof listOverlay>>;
  readonly digest: string;
  readonly sea: Awaited<ReturnType<typeof buildSea>>;
  readonly bundle: Awaited<ReturnType<typeof bundleAgent>>;
  readonly libs: string[];
}

/** The agent binary, the glibc runtime and the rootfs overlay, checked and normalised. */
async function buildAgentAndOverlay(
  o: BuildOptions,
  board: BoardConfig,
  picked: BuildInputs,
  at: (i: LockedInput) => string,
  work: (p: string) => string,
  log: Logger,
): Promise<AgentAndOverlay> {
  // --- agent binary ---
  const hostPkg = await unpackNpmTarball(at(picked.nodeHost), work('node-host'));
  const targetPkg = await unpackNpmTarball(at(picked.nodeTarget), work('node-target'));
  const postjectPkg = await unpackNpmTarball(at(picked.postject), work('postject'));
  const hostNode = join(hostPkg, 'bin', 'node');
  checkHostNode((await exec(hostNode, ['--version'])).stdout.trim(), picked.nodeTarget.version);
  let tapAddon: string | undefined;
  if (o.tapAddon === 'none') tapAddon = undefined;
  else if (o.tapAddon) tapAddon = o.tapAddon;
  else {
    tapAddon = work('tap-arm64/tap.node');
    await exec('bash', [join(o.repoRoot, 'scripts/build-addon-arm64.sh'), tapAddon], {
      cwd: o.repoRoot,
      env: { ...process.env, NODE_INCLUDE: join(hostPkg, 'include', 'node') },
    }).catch((e: unknown) => {
      throw new ImageError(
        'sea-failed',
        `cross-compiling the TAP addon failed (pass --tap-addon FILE to use a prebuilt one): ${(e as Error).message}`,
        { cause: e },
      );
    });
  }

  const overlay = work('overlay');
  await copyTree(join(o.repoRoot, 'firmware', 'rootfs-overlay'), overlay);
  if (o.extraFilesDir) await copyTree(o.extraFilesDir, overlay);
  const uciFile = join(overlay, 'etc/config/connector');
  await writeFile(uciFile, stampHeadends(stampMinTime(await readFile(uciFile, 'utf8'), o.sourceDateEpoch), o.headends ?? []));
  const runtimeDir = join(overlay, board.runtimeDir);
  await mkdir(runtimeDir, { recursive: true });
  const libs = await assembleGlibcRuntime(picked.glibc.map(at), work('glibc'), runtimeDir);

  log.info('bundling the agent', { entry: o.agentEntry });
  const bundle = await bundleAgent(o.agentEntry, o.repoRoot, o.kit.version);
  const agentOut = join(overlay, board.agentPath);
  await mkdir(join(agentOut, '..'), { recursive: true });
  log.info('making the SEA binary', { node: picked.nodeTarget.version, format: bundle.format, addon: tapAddon !== undefined });
  const sea = await buildSea({
    workDir: work('sea'),
    hostNode,
    targetNode: join(targetPkg, 'bin', 'node'),
    postjectDir: postjectPkg,
    launcher: launcherSource(bundle),
    tapAddon,
    ...(bundle.format === 'cjs' ? { bundleCode: bundle.code } : {}),
    runtimeDir: board.runtimeDir,
    out: agentOut,
    strip: 'aarch64-linux-gnu-strip',
  });
  checkRuntimeLibs(await elfNeeded(agentOut), RUNTIME_LIBS);

  // --- overlay ---
  await normaliseOverlay(overlay, o.sourceDateEpoch);
  const entries = await listOverlay(overlay);
  checkOverlay(entries);
  await checkScripts(overlay, entries);
  const digest = overlayDigest(entries);
  log.info('overlay ready', { files: entries.filter((e) => e.type === 'file').length, digest });

  return { overlay, agentOut, entries, digest, sea, bundle, libs };
}

export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const log = o.log ?? silentLogger;
  const board = parseBoardConfig(await readText(join(o.boardDir, 'board.json'), 'board file'));
  const lock = parseImageLock(await readText(o.lockFile, 'lock file'));
  const picked = pickInputs(lock, o.openwrt ?? lock.defaults.openwrt, o.node ?? lock.defaults.node);

  log.info('checking pinned inputs', { count: allBuildInputs(picked).length, offline: o.offline, mirror: o.mirrorDir });
  const got = await fetchInputs(allBuildInputs(picked), {
    cacheDir: o.cacheDir,
    mirrorDir: o.mirrorDir,
    offline: o.offline,
    log,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  const at = (i: LockedInput): string => (got.get(i.name) as ResolvedInput).path;
  const ibTarball = await verifyImageBuilder(picked, got, { usign: o.verify, gpg: o.gpgVerify ?? gpgvVerify }, dirname(o.lockFile));
  log.info('ImageBuilder sha256sums signature good', {
    openwrt: picked.imagebuilder.version,
    key: picked.key.type === 'usign' ? picked.key.keyId : picked.key.fingerprint,
  });

  await rm(o.workDir, { recursive: true, force: true });
  await mkdir(o.workDir, { recursive: true });
  const work = (p: string): string => join(o.workDir, p);

  // --- ImageBuilder first: a wrong tarball, profile, feed or package name fails before the slow steps ---
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const user = o.buildUser ?? (root ? DEFAULT_BUILD_USER : undefined);
  // Somewhere the build user can reach whatever the repository's permissions are.
  const ibWork = await mkdtemp(join(tmpdir(), 'ck-ib-'));
  try {
    await chmod(ibWork, 0o755);
    const ibDir = await unpackImageBuilder(ibTarball, join(ibWork, 'ib'));
    if (o.mirrorDir) {
      const feeds = await pointFeedsAtMirror(ibDir, o.mirrorDir, !o.offline, picked.series);
      log.info('package feeds read from the mirror', { feeds: feeds.length });
      const present: string[] = [];
      for (const f of feeds)
        if (
          await stat(f).then(
            (s) => s.isDirectory(),
            () => false,
          )
        )
          present.push(f);
      await checkReadableBy(user, present);
    }
    const files = join(ibWork, 'files');
    const binDir = join(ibWork, 'bin');
    await prepareForUser([join(ibWork, 'ib'), binDir], user);
    const ibOpts = { ibDir, user, sourceDateEpoch: o.sourceDateEpoch, log, timeoutMs: 30 * 60_000 };
    const info = await makeInfo(ibOpts, board);
    log.info('ImageBuilder', {
      target: info.target,
      revision: info.revision,
      profile: board.profile,
      user: user ? `${user.uid}:${user.gid}` : 'self',
    });
    const req = {
      packages: seriesPackages(board.packages, picked.series),
      filesDir: files,
      binDir,
      extraImageName: `connector-${o.kit.version}`,
      disabledServices: board.disabledServices,
    };
    const packages = await makeManifest(ibOpts, board, req);
    checkSeriesManifest(packages, picked.series, picked.imagebuilder.version);
    log.info('package set resolved', { packages: packages.length });

    const { overlay, agentOut, entries, digest, sea, bundle, libs } = await buildAgentAndOverlay(o, board, picked, at, work, log);
    await copyTree(overlay, files);
    await normaliseOverlay(files, o.sourceDateEpoch);
    await makeImage(ibOpts, board, req);
    const image = await dropImageSignatures(await checkBuildResult(binDir, board), picked.series, log);
    log.info('image verified', { file: image.file, sha256: image.sha256 });

    // --- outputs ---
    await mkdir(o.outDir, { recursive: true });
    const outputs: { file: string; sha256: string; size: number }[] = [];
    const put = async (file: string, data: Buffer | string): Promise<void> => {
      await writeFile(join(o.outDir, file), data);
      const b = typeof data === 'string' ? Buffer.from(data) : data;
      outputs.push({ file, sha256: sha256(b), size: b.length });
    };
    const imageBytes = await readFile(image.path);
    await put(image.file, imageBytes);
    await put(`${image.file}.sha256`, `${image.sha256}  ${image.file}\n`);
    const agentBytes = await readFile(agentOut);
    const agentFile = `connector-agent-${o.kit.version}-linux-arm64`;
    await put(agentFile, agentBytes);
    await packOverlay(overlay, join(o.outDir, 'overlay.tar.gz'), o.sourceDateEpoch);
    const ovBytes = await readFile(join(o.outDir, 'overlay.tar.gz'));
    outputs.push({ file: 'overlay.tar.gz', sha256: sha256(ovBytes), size: ovBytes.length });

    if (o.release) {
      const manifest = imageRelease({
        version: o.kit.version,
        boardName: board.boardName,
        osCompatVersion: String(image.metadata.compat_version ?? '1.0'),
        sourceDateEpoch: o.sourceDateEpoch,
        urlBase: o.release.urlBase,
        image: { name: image.file, sha256: image.sha256, size: image.size },
        agent: { name: agentFile, sha256: sha256(agentBytes), size: agentBytes.length },
      });
      const text = encodeReleaseManifest(manifest);
      const secret = parseUsignSecretKey(await readFile(o.release.secretKeyFile, 'utf8'));
      await put('release.json', text);
      await put('release.json.sig', encodeUsignSignature(signUsign(Buffer.from(text), secret, releaseSignatureComment(secret.keyId))));
    }

    const facts = {
      kit: o.kit,
      board,
      sourceDateEpoch: o.sourceDateEpoch,
      openwrt: { version: picked.imagebuilder.version, revision: info.revision },
      inputs: allBuildInputs(picked).map((i) => {
        const r = got.get(i.name) as ResolvedInput;
        return { input: i, sha256: r.sha256, size: r.size };
      }),
      packages,
      bundledNpm: bundle.packages,
      agent: {
        sha256: sea.sha256,
        size: sea.size,
        blobSha256: sea.blobSha256,
        bundleSha256: sha256(bundle.code),
        bundleFormat: bundle.format,
      },
      runtimeLibs: libs,
      overlay: { digest, entries },
      outputs: [...outputs],
    };
    await put('sbom.cdx.json', encodeSbom(facts, image.file, image.sha256));
    await writeFile(join(o.outDir, 'build-manifest.json'), encodeBuildManifest({ ...facts, outputs }));
    log.info('build done', { out: o.outDir, image: basename(image.path) });
    return { image: join(o.outDir, image.file), imageSha256: image.sha256, outputs, board };
  } finally {
    await rm(ibWork, { recursive: true, force: true });
  }
}

// --- npm run build-image ---

export interface BuildImageCommand {
  readonly board: string;
  readonly openwrt?: string | undefined;
  readonly node?: string | undefined;
  readonly lock?: string | undefined;
  readonly mirror?: string | undefined;
  readonly offline: boolean;
  readonly cache?: string | undefined;
  readonly out?: string | undefined;
  readonly work?: string | undefined;
  readonly files?: string | undefined;
  readonly headends: readonly string[];
  readonly tapAddon?: string | 'none' | undefined;
  readonly buildUser?: BuildUser | undefined;
  readonly release?: { readonly key: string; readonly url: string } | undefined;
  readonly entry?: string | undefined;
}

const sharedVerify: UsignVerify = (message, sigText, pubkeyText) => verifyUsign(message, sigText, parseUsignPublicKey(pubkeyText)).ok;

function progressPrinter(): (p: FetchProgress) => void {
  const last = new Map<string, number>();
  return (p) => {
    const step = p.total ? Math.floor((p.received / p.total) * 10) : Math.floor(p.received / (16 * 1024 * 1024));
    if (last.get(p.name) === step) return;
    last.set(p.name, step);
    const mb = (n: number): string => (n / 1048576).toFixed(1);
    process.stderr.write(`  fetching ${p.name}: ${mb(p.received)}${p.total ? ` / ${mb(p.total)} MiB (${step * 10}%)` : ' MiB'}\n`);
  };
}

function gitValue(args: string[], fallback: string): string {
  const r = execSync('git', args, true);
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : fallback;
}

/** Builds for a board of this repository; prints the image path and every output's hash. */
export async function runBuildImage(o: BuildImageCommand): Promise<number> {
  // src/image/main.ts and dist/image/main.js are both two levels below the repository root.
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  const envEpoch = process.env['SOURCE_DATE_EPOCH'];
  if (envEpoch !== undefined && !/^\d+$/.test(envEpoch)) throw new UsageError('SOURCE_DATE_EPOCH must be whole seconds since 1970');
  const epoch = Number(envEpoch ?? gitValue(['-C', repo, 'log', '-1', '--format=%ct'], '0'));
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };
  const result = await buildImage({
    repoRoot: repo,
    boardDir: join(repo, 'board', o.board),
    lockFile: resolve(o.lock ?? join(repo, 'board', o.board, 'image.lock.json')),
    openwrt: o.openwrt,
    node: o.node,
    cacheDir: resolve(o.cache ?? join(repo, '.cache', 'image-inputs')),
    mirrorDir: o.mirror === undefined ? undefined : resolve(o.mirror),
    offline: o.offline,
    outDir: resolve(o.out ?? join(repo, 'out', o.board)),
    workDir: resolve(o.work ?? join(repo, '.cache', 'image-work', o.board)),
    sourceDateEpoch: epoch,
    headends: o.headends,
    agentEntry: resolve(o.entry ?? join(repo, 'src', 'agent', 'cli.ts')),
    tapAddon: o.tapAddon,
    extraFilesDir: o.files === undefined ? undefined : resolve(o.files),
    buildUser: o.buildUser,
    verify: sharedVerify,
    kit: { name: pkg.name, version: pkg.version, commit: gitValue(['-C', repo, 'rev-parse', 'HEAD'], 'unknown') },
    release: o.release ? { secretKeyFile: resolve(o.release.key), urlBase: o.release.url } : undefined,
    log: loggerFromEnv(process.env, { component: 'build-image' }),
    onProgress: progressPrinter(),
  });
  process.stdout.write(`${result.image}\n`);
  for (const x of result.outputs) process.stdout.write(`  ${x.sha256}  ${x.file} (${x.size} bytes)\n`);
  return 0;
}
