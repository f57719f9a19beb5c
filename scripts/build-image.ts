// SPDX-License-Identifier: UNLICENSED
// `npm run build-image -- --board nanopi-r3s [--openwrt 25.12.N] [--mirror DIR] [--out DIR] ...`
// Builds the flashable OpenWrt image for a board from pinned inputs (docs/image.md). Parses the command
// line; src/image/main.ts does the build.
import 'reflect-metadata';
import { parseCommandArgs, str, flag } from '../src/shared/cli/args.js';
import { runProgram } from '../src/shared/cli/dispatch.js';
import { UsageError } from '../src/shared/errors.js';
import { runBuildImage } from '../src/image/main.js';

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
  const board = str(p, 'board');
  if (!board) throw new UsageError('--board is required (e.g. --board nanopi-r3s)');
  if (!/^[a-z0-9-]+$/.test(board)) throw new UsageError(`--board "${board}" is not a board directory name`);
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
  return runBuildImage({
    board,
    openwrt: str(p, 'openwrt'),
    node: str(p, 'node'),
    lock: str(p, 'lock'),
    mirror: str(p, 'mirror'),
    offline: flag(p, 'offline'),
    cache: str(p, 'cache'),
    out: str(p, 'out'),
    work: str(p, 'work'),
    files: str(p, 'files'),
    headends: (p.values['headend'] as string[] | undefined) ?? [],
    tapAddon: flag(p, 'no-tap-addon') ? 'none' : str(p, 'tap-addon'),
    buildUser,
    release: releaseKey && releaseUrl ? { key: releaseKey, url: releaseUrl } : undefined,
    entry: str(p, 'entry'),
  });
}

void runProgram('build-image', () => main(process.argv.slice(2)));
