// SPDX-License-Identifier: UNLICENSED
// `npm run build-image -- --board nanopi-r3s [--openwrt 24.10.N] [--mirror DIR] [--out DIR] ...`
// Builds the flashable OpenWrt image for a board from pinned inputs (docs/image.md).
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandArgs, str, flag } from '../src/shared/cli/args.js';
import { runProgram } from '../src/shared/cli/dispatch.js';
import { UsageError } from '../src/shared/errors.js';
import { execSync } from '../src/shared/exec.js';
import { loggerFromEnv } from '../src/shared/log.js';
import { parseUsignPublicKey, verifyUsign } from '../src/shared/usign/index.js';
import { buildImage } from '../src/image/adapters/build.js';
import type { FetchProgress } from '../src/image/adapters/fetcher.js';
import type { UsignVerify } from '../src/image/adapters/signature.js';

const HELP = `usage: npm run build-image -- --board NAME [options]

  --board NAME          board directory under board/ (nanopi-r3s)
  --openwrt VERSION     OpenWrt release from the lock file (default: the lock file's default)
  --node VERSION        Node runtime version from the lock file (default: the lock file's default)
  --lock FILE           lock file (default: board/NAME/image.lock.json)
  --mirror DIR          local mirror of the inputs (host/path layout, as wget -x writes it)
  --offline             never download; fail listing every missing input
  --cache DIR           download cache (default: .cache/image-inputs)
  --out DIR             outputs (default: out/NAME)
  --work DIR            scratch directory (default: .cache/image-work/NAME)
  --files DIR           extra files merged over firmware/rootfs-overlay (trust anchors, OTA keys)
  --headend URL         tls://host[:port] of a DC headend the units dial (repeat for failover order)
  --tap-addon FILE      prebuilt arm64 tap.node (default: cross-compile native/tap/tap.c)
  --no-tap-addon        build without the TAP addon (the agent's self-test will report it missing)
  --build-user UID:GID  user that runs the ImageBuilder when run as root (default 65534:65534)
  --release-key FILE    usign secret key: also write release.json(.sig) for the OTA channel
  --release-url URL     https base URL the release artifacts will be served from
  --entry FILE          agent entry point to bundle (default: src/agent/cli.ts)

SOURCE_DATE_EPOCH sets every timestamp (default: the last commit's time), so equal inputs give equal bytes.
LOG_LEVEL=debug shows the ImageBuilder's output.`;

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

async function main(argv: string[]): Promise<number> {
  const p = parseCommandArgs(
    argv,
    {
      board: { type: 'string' },
      openwrt: { type: 'string' },
      node: { type: 'string' },
      lock: { type: 'string' },
      mirror: { type: 'string' },
      offline: { type: 'boolean' },
      cache: { type: 'string' },
      out: { type: 'string' },
      work: { type: 'string' },
      files: { type: 'string' },
      headend: { type: 'string', multiple: true },
      'tap-addon': { type: 'string' },
      'no-tap-addon': { type: 'boolean' },
      'build-user': { type: 'string' },
      'release-key': { type: 'string' },
      'release-url': { type: 'string' },
      entry: { type: 'string' },
    },
    false,
  );
  if (p.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const boardName = str(p, 'board');
  if (!boardName) throw new UsageError('--board is required (e.g. --board nanopi-r3s)');
  if (!/^[a-z0-9-]+$/.test(boardName)) throw new UsageError(`--board "${boardName}" is not a board directory name`);
  const repo = fileURLToPath(new URL('..', import.meta.url));
  let buildUser: { uid: number; gid: number } | undefined;
  const bu = str(p, 'build-user');
  if (bu !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(bu);
    if (!m) throw new UsageError('--build-user must be UID:GID (numbers)');
    buildUser = { uid: Number(m[1]), gid: Number(m[2]) };
  }
  const releaseKey = str(p, 'release-key');
  const releaseUrl = str(p, 'release-url');
  if ((releaseKey === undefined) !== (releaseUrl === undefined)) throw new UsageError('--release-key and --release-url go together');
  if (releaseUrl !== undefined && !/^https:\/\/\S+$/.test(releaseUrl)) throw new UsageError('--release-url must be an https:// URL');
  if (flag(p, 'no-tap-addon') && str(p, 'tap-addon')) throw new UsageError('--tap-addon and --no-tap-addon exclude each other');

  const envEpoch = process.env['SOURCE_DATE_EPOCH'];
  if (envEpoch !== undefined && !/^\d+$/.test(envEpoch)) throw new UsageError('SOURCE_DATE_EPOCH must be whole seconds since 1970');
  const epoch = Number(envEpoch ?? gitValue(['-C', repo, 'log', '-1', '--format=%ct'], '0'));
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string };
  const log = loggerFromEnv(process.env, { component: 'build-image' });

  const result = await buildImage({
    repoRoot: repo,
    boardDir: join(repo, 'board', boardName),
    lockFile: resolve(str(p, 'lock') ?? join(repo, 'board', boardName, 'image.lock.json')),
    openwrt: str(p, 'openwrt'),
    node: str(p, 'node'),
    cacheDir: resolve(str(p, 'cache') ?? join(repo, '.cache', 'image-inputs')),
    mirrorDir: str(p, 'mirror') === undefined ? undefined : resolve(str(p, 'mirror') as string),
    offline: flag(p, 'offline'),
    outDir: resolve(str(p, 'out') ?? join(repo, 'out', boardName)),
    workDir: resolve(str(p, 'work') ?? join(repo, '.cache', 'image-work', boardName)),
    sourceDateEpoch: epoch,
    headends: (p.values['headend'] as string[] | undefined) ?? [],
    agentEntry: resolve(str(p, 'entry') ?? join(repo, 'src', 'agent', 'cli.ts')),
    tapAddon: flag(p, 'no-tap-addon') ? 'none' : str(p, 'tap-addon'),
    extraFilesDir: str(p, 'files') === undefined ? undefined : resolve(str(p, 'files') as string),
    buildUser,
    verify: sharedVerify,
    kit: { name: pkg.name, version: pkg.version, commit: gitValue(['-C', repo, 'rev-parse', 'HEAD'], 'unknown') },
    release: releaseKey && releaseUrl ? { secretKeyFile: resolve(releaseKey), urlBase: releaseUrl } : undefined,
    log,
    onProgress: progressPrinter(),
  });
  process.stdout.write(`${result.image}\n`);
  for (const o of result.outputs) process.stdout.write(`  ${o.sha256}  ${o.file} (${o.size} bytes)\n`);
  return 0;
}

void runProgram('build-image', () => main(process.argv.slice(2)));
