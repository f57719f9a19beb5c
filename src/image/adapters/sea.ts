// SPDX-License-Identifier: UNLICENSED
// The agent as one executable: esbuild bundle -> SEA blob (made by an x64 Node of exactly the target's
// version) -> postject into the stripped arm64 node -> patchelf interpreter and rpath to the bundled glibc
// runtime. patchelf runs AFTER injection: patching first corrupts .dynstr once postject rewrites the ELF.
// The TAP addon rides along as a SEA asset and is extracted to tmpfs at start.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { exec } from '../../shared/exec.js';
import { ImageError } from '../core/errors.js';

export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
export const TAP_ASSET = 'tap.node';
/** The bundle's own source, kept as an asset so that worker threads (datagram lanes) can run it too. */
export const BUNDLE_ASSET = 'bundle.cjs';

/** Unpacks an npm tarball (`package/` inside) and returns that directory. */
export async function unpackNpmTarball(tgz: string, dest: string): Promise<string> {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  await exec('tar', ['-xzf', tgz, '-C', dest, '--no-same-owner']);
  return join(dest, 'package');
}

export interface BundleResult {
  /** 'cjs' when the entry allows it; 'esm' (loaded from a data: URL by the launcher) when it uses top-level await. */
  readonly format: 'cjs' | 'esm';
  readonly code: string;
  /** node_modules packages that ended up in the bundle, for the SBOM. */
  readonly packages: readonly { name: string; version: string }[];
}

async function bundledPackages(meta: Metafile, root: string): Promise<{ name: string; version: string }[]> {
  const names = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) names.add(m[1] as string);
  }
  const out: { name: string; version: string }[] = [];
  for (const name of [...names].sort()) {
    try {
      const pkg = JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
      out.push({ name, version: pkg.version ?? 'unknown' });
    } catch {
      out.push({ name, version: 'unknown' });
    }
  }
  return out;
}

/**
 * Bundles the agent entry. SEA runs its main script as CommonJS, which cannot hold top-level await; an
 * entry with top-level await is bundled as ESM instead and imported by the launcher.
 */
export async function bundleAgent(entry: string, root: string, version: string): Promise<BundleResult> {
  const common = {
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: 'node' as const,
    target: 'node24',
    write: false,
    metafile: true,
    logLevel: 'silent' as const,
    legalComments: 'none' as const,
    // The launcher sets this before the bundle runs; import.meta has no meaning inside a SEA.
    define: { __CONNECTOR_VERSION__: JSON.stringify(version), 'import.meta.url': 'globalThis.__ck_meta_url' },
    external: ['*.node'],
  };
  const attempt = async (format: 'cjs' | 'esm'): Promise<BundleResult> => {
    const r = await build({
      ...common,
      format,
      ...(format === 'esm'
        ? {
            banner: {
              js: "import { createRequire as __ckCreateRequire } from 'node:module';\nconst require = __ckCreateRequire(process.execPath);",
            },
          }
        : {}),
    });
    const file = r.outputFiles?.[0];
    if (!file || !r.metafile) throw new ImageError('sea-failed', `esbuild produced no output for ${entry}`);
    return { format, code: file.text, packages: await bundledPackages(r.metafile, root) };
  };
  try {
    return await attempt('cjs');
  } catch (e) {
    const msg = (e as Error).message;
    if (!/Top-level await/.test(msg)) throw new ImageError('sea-failed', `bundling ${relative(root, entry)} failed: ${msg}`, { cause: e });
  }
  try {
    return await attempt('esm');
  } catch (e) {
    throw new ImageError('sea-failed', `bundling ${relative(root, entry)} failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The SEA main script: extracts the TAP addon asset to tmpfs (once per content hash), points the agent at
 * it through CONNECTOR_TAP_ADDON, then runs the bundle. Plain CommonJS, as SEA requires.
 */
export function launcherSource(bundle: BundleResult): string {
  const prelude = `'use strict';
globalThis.__ck_meta_url = require('node:url').pathToFileURL(process.execPath).href;
(function extractTapAddon() {
  const sea = require('node:sea');
  if (!sea.isSea() || process.env.CONNECTOR_TAP_ADDON) return;
  let bytes;
  try { bytes = Buffer.from(sea.getAsset(${JSON.stringify(TAP_ASSET)})); } catch { return; }
  const fs = require('node:fs'), path = require('node:path');
  const hash = require('node:crypto').createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const dir = process.env.CONNECTOR_ADDON_DIR || '/tmp/connector/addon';
  const file = path.join(dir, 'tap-' + hash + '.node');
  try {
    if (!fs.existsSync(file)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = file + '.' + process.pid;
      fs.writeFileSync(tmp, bytes, { mode: 0o500 });
      fs.renameSync(tmp, file);
    }
    process.env.CONNECTOR_TAP_ADDON = file;
  } catch (e) {
    process.stderr.write('connector-agent: cannot extract the TAP addon to ' + dir + ': ' + e.message + '\\n');
  }
})();
`;
  // A worker thread cannot load the executable as a module: it runs the bundle from its asset, after the
  // two lines of this prelude it needs (the addon's path is in the environment it inherits). The global's
  // name is the one src/agent/adapters/datagram-lanes.ts looks for.
  const workerSource = `(function keepWorkerSource() {
  const sea = require('node:sea');
  if (!sea.isSea()) return;
  globalThis.__ck_worker_source = function () {
    return "'use strict';\\nglobalThis.__ck_meta_url = require('node:url').pathToFileURL(process.execPath).href;\\n" + sea.getAsset(${JSON.stringify(BUNDLE_ASSET)}, 'utf8');
  };
})();
`;
  if (bundle.format === 'cjs') return `${prelude}${workerSource}${bundle.code}`;
  // The ESM bundle is served under a file: URL next to the binary through module hooks, so stack traces
  // and resolver errors name a path instead of a megabyte of base64; data: is the fallback.
  const b64 = Buffer.from(bundle.code, 'utf8').toString('base64');
  return `${prelude}(function runBundle() {
  const b64 = ${JSON.stringify(b64)};
  const code = Buffer.from(b64, 'base64').toString('utf8');
  const mod = require('node:module');
  let url = 'data:text/javascript;base64,' + b64;
  if (typeof mod.registerHooks === 'function') {
    url = require('node:url').pathToFileURL(process.execPath + '.bundle.mjs').href;
    mod.registerHooks({
      resolve(spec, ctx, next) { return spec === url ? { url, format: 'module', shortCircuit: true } : next(spec, ctx); },
      load(u, ctx, next) { return u === url ? { format: 'module', source: code, shortCircuit: true } : next(u, ctx); },
    });
  }
  import(url).catch((e) => {
    process.stderr.write(String((e && e.stack) || e) + '\\n');
    process.exit(70);
  });
})();
`;
}

export interface SeaBuildOptions {
  readonly workDir: string;
  /** node binary of the build host, same version as the target node. */
  readonly hostNode: string;
  readonly targetNode: string;
  readonly postjectDir: string;
  readonly launcher: string;
  readonly tapAddon?: string | undefined;
  /** The bundle's source (a CommonJS one), kept as an asset for worker threads. */
  readonly bundleCode?: string | undefined;
  readonly runtimeDir: string;
  readonly out: string;
  /** e.g. aarch64-linux-gnu-strip; undefined keeps debug info (+20 MB). */
  readonly strip?: string | undefined;
}

export interface SeaBuildResult {
  readonly blobSha256: string;
  readonly sha256: string;
  readonly size: number;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export async function buildSea(o: SeaBuildOptions): Promise<SeaBuildResult> {
  await mkdir(o.workDir, { recursive: true });
  // Relative names only: the blob records the main script's path, and build directories differ.
  const blob = join(o.workDir, 'sea.blob');
  await writeFile(join(o.workDir, 'connector-agent.cjs'), o.launcher);
  const config: Record<string, unknown> = {
    main: 'connector-agent.cjs',
    output: 'sea.blob',
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
  };
  const assets: Record<string, string> = {};
  if (o.tapAddon) {
    await copyFile(o.tapAddon, join(o.workDir, TAP_ASSET));
    assets[TAP_ASSET] = TAP_ASSET;
  }
  if (o.bundleCode !== undefined) {
    await writeFile(join(o.workDir, BUNDLE_ASSET), o.bundleCode);
    assets[BUNDLE_ASSET] = BUNDLE_ASSET;
  }
  if (Object.keys(assets).length > 0) config['assets'] = assets;
  await writeFile(join(o.workDir, 'sea-config.json'), JSON.stringify(config, null, 2));
  await exec(o.hostNode, ['--experimental-sea-config', 'sea-config.json'], { cwd: o.workDir }).catch((e: unknown) => {
    throw new ImageError('sea-failed', `making the SEA blob failed: ${(e as Error).message}`, { cause: e });
  });
  const blobBytes = await readFile(blob);

  const target = await readFile(o.targetNode);
  const fuses = target.toString('latin1').split(`${SEA_FUSE}:0`).length - 1;
  if (fuses !== 1)
    throw new ImageError('sea-failed', `${o.targetNode} has ${fuses} SEA fuses, expected exactly one unblown: not a SEA-capable node`);
  await copyFile(o.targetNode, o.out);
  if (o.strip) await exec(o.strip, ['--strip-all', o.out]);

  // In a child process: postject's wasm module installs process-wide handlers and needs ~1 GB for the
  // binary; its "Can't find string offset for section name" lines for arm64 ELF notes are harmless.
  const inject = [
    'const { inject } = require(process.argv[1]);',
    "const data = require('node:fs').readFileSync(process.argv[3]);",
    "inject(process.argv[2], 'NODE_SEA_BLOB', data, { sentinelFuse: process.argv[4] })",
    '  .then(() => process.exit(0), (e) => { console.error(e && e.message || e); process.exit(1); });',
  ].join('\n');
  await exec(process.execPath, ['-e', inject, join(o.postjectDir, 'dist', 'api.js'), o.out, blob, SEA_FUSE]).catch((e: unknown) => {
    throw new ImageError('sea-failed', `postject could not inject the SEA blob: ${(e as Error).message}`, { cause: e });
  });
  await exec('patchelf', ['--set-interpreter', `${o.runtimeDir}/ld-linux-aarch64.so.1`, '--set-rpath', o.runtimeDir, o.out]).catch(
    (e: unknown) => {
      throw new ImageError('sea-failed', `patchelf failed: ${(e as Error).message}`, { cause: e });
    },
  );
  const final = await readFile(o.out);
  return { blobSha256: sha256(blobBytes), sha256: sha256(final), size: final.length };
}

/** DT_NEEDED of an ELF file, via patchelf. */
export async function elfNeeded(file: string): Promise<string[]> {
  const r = await exec('patchelf', ['--print-needed', file]);
  return r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}
