// SPDX-License-Identifier: UNLICENSED
// One firmware build, start to finish: pinned inputs -> signature of OpenWrt's sha256sums -> agent SEA
// binary + glibc runtime -> rootfs overlay -> ImageBuilder (info, manifest, image) as an unprivileged
// user -> result checks -> outputs (image, .sha256, build manifest, SBOM, overlay tarball, agent binary,
// optionally the signed OTA release). Wiring only; each step lives in its own module.
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { exec } from '../../shared/exec.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import { encodeUsignSignature, parseUsignSecretKey, signUsign } from '../../shared/usign/index.js';
import { encodeReleaseManifest, type ReleaseManifest } from '../../shared/ota/manifest.js';
import { parseBoardConfig, type BoardConfig } from '../core/board.js';
import { ImageError } from '../core/errors.js';
import { fetchInputs, type FetchProgress, type ResolvedInput } from './fetcher.js';
import { assembleGlibcRuntime, RUNTIME_LIBS } from './glibc-runtime.js';
import { checkReadableBy, DEFAULT_BUILD_USER, makeImage, makeInfo, makeManifest, pointFeedsAtMirror, prepareForUser, unpackImageBuilder, type BuildUser } from './imagebuilder.js';
import { allBuildInputs, parseImageLock, pickInputs, type BuildInputs, type LockedInput } from '../core/lock.js';
import { encodeBuildManifest, encodeSbom, isoFromEpoch } from '../core/manifest.js';
import { checkOverlay, checkScripts, copyTree, listOverlay, normaliseOverlay, overlayDigest, packOverlay, stampHeadends, stampMinTime } from './overlay.js';
import { checkBuildResult } from './result-check.js';
import { bundleAgent, buildSea, elfNeeded, launcherSource, unpackNpmTarball } from './sea.js';
import { parseSha256Sums } from '../core/sha256sums.js';
import { checkSignedSums, type UsignVerify } from './signature.js';

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
    throw new ImageError(what === 'lock file' ? 'lock-invalid' : 'board-invalid', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Checks OpenWrt's signed sha256sums, then that it lists the ImageBuilder with the hash the lock pins. */
async function verifyImageBuilder(b: BuildInputs, got: ReadonlyMap<string, ResolvedInput>, verify: UsignVerify): Promise<string> {
  const path = (i: LockedInput): string => (got.get(i.name) as ResolvedInput).path;
  const sums = await readFile(path(b.sums));
  const sig = await readFile(path(b.sumsSig), 'utf8');
  await checkSignedSums(verify, sums, sig, b.key, `${b.sums.name} (${b.sums.url})`);
  const listed = parseSha256Sums(sums.toString('utf8')).get(b.imagebuilder.file);
  if (!listed) throw new ImageError('not-in-sums', `${b.imagebuilder.file} is not listed in the signed ${b.sums.name}`);
  if (listed !== b.imagebuilder.sha256) {
    throw new ImageError('input-tampered', `the signed ${b.sums.name} lists ${b.imagebuilder.file} as ${listed}, the lock file pins ${b.imagebuilder.sha256 ?? '-'}`);
  }
  return path(b.imagebuilder);
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
  const hv = (await exec(hostNode, ['--version'])).stdout.trim();
  if (hv !== `v${picked.nodeTarget.version}`) {
    throw new ImageError('sea-failed', `host node is ${hv}, target is v${picked.nodeTarget.version}: the SEA blob format needs the same version`);
  }
  let tapAddon: string | undefined;
  if (o.tapAddon === 'none') tapAddon = undefined;
  else if (o.tapAddon) tapAddon = o.tapAddon;
  else {
    tapAddon = work('tap-arm64/tap.node');
    await exec('bash', [join(o.repoRoot, 'scripts/build-addon-arm64.sh'), tapAddon], {
      cwd: o.repoRoot,
      env: { ...process.env, NODE_INCLUDE: join(hostPkg, 'include', 'node') },
    }).catch((e: unknown) => {
      throw new ImageError('sea-failed', `cross-compiling the TAP addon failed (pass --tap-addon FILE to use a prebuilt one): ${(e as Error).message}`, { cause: e });
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
    runtimeDir: board.runtimeDir,
    out: agentOut,
    strip: 'aarch64-linux-gnu-strip',
  });
  const needed = await elfNeeded(agentOut);
  const lacking = needed.filter((n) => !(RUNTIME_LIBS as readonly string[]).includes(n));
  if (lacking.length > 0) throw new ImageError('sea-failed', `the agent binary needs ${lacking.join(', ')}, which the glibc runtime does not ship`);

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
  const ibTarball = await verifyImageBuilder(picked, got, o.verify);
  log.info('ImageBuilder sha256sums signature good', { key: picked.key.keyId });

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
      const feeds = await pointFeedsAtMirror(ibDir, o.mirrorDir, !o.offline);
      log.info('package feeds read from the mirror', { feeds: feeds.length });
      const present: string[] = [];
      for (const f of feeds) if (await stat(f).then((s) => s.isDirectory(), () => false)) present.push(f);
      await checkReadableBy(user, present);
    }
    const files = join(ibWork, 'files');
    const binDir = join(ibWork, 'bin');
    await prepareForUser([join(ibWork, 'ib'), binDir], user);
    const ibOpts = { ibDir, user, sourceDateEpoch: o.sourceDateEpoch, log, timeoutMs: 30 * 60_000 };
    const info = await makeInfo(ibOpts, board);
    log.info('ImageBuilder', { target: info.target, revision: info.revision, profile: board.profile, user: user ? `${user.uid}:${user.gid}` : 'self' });
    const req = {
      packages: board.packages,
      filesDir: files,
      binDir,
      extraImageName: `connector-${o.kit.version}`,
      disabledServices: board.disabledServices,
    };
    const packages = await makeManifest(ibOpts, board, req);
    log.info('package set resolved', { packages: packages.length });

    const { overlay, agentOut, entries, digest, sea, bundle, libs } = await buildAgentAndOverlay(o, board, picked, at, work, log);
    await copyTree(overlay, files);
    await normaliseOverlay(files, o.sourceDateEpoch);
    await makeImage(ibOpts, board, req);
    const image = await checkBuildResult(binDir, board);
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
      const manifest: ReleaseManifest = {
        schema: 1,
        version: o.kit.version,
        board: board.boardName,
        compat: { osCompatVersion: String(image.metadata.compat_version ?? '1.0') },
        createdAt: isoFromEpoch(o.sourceDateEpoch),
        artifacts: [
          { kind: 'sysupgrade', name: image.file, sha256: image.sha256, size: image.size, urls: [`${o.release.urlBase.replace(/\/$/, '')}/${image.file}`] },
          { kind: 'agent', name: agentFile, sha256: sha256(agentBytes), size: agentBytes.length, urls: [`${o.release.urlBase.replace(/\/$/, '')}/${agentFile}`] },
        ],
      };
      const text = encodeReleaseManifest(manifest);
      const secret = parseUsignSecretKey(await readFile(o.release.secretKeyFile, 'utf8'));
      await put('release.json', text);
      await put('release.json.sig', encodeUsignSignature(signUsign(Buffer.from(text), secret, `signed by connector release key ${secret.keyId}`)));
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
      agent: { sha256: sea.sha256, size: sea.size, blobSha256: sea.blobSha256, bundleSha256: sha256(bundle.code), bundleFormat: bundle.format },
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
