// SPDX-License-Identifier: UNLICENSED
// The ImageBuilder runner and the result checks, end to end against the labelled STAND-IN ImageBuilder
// (./stand-in-ib, real mksquashfs/mkfs.ext4/sfdisk/gzip, fwtool-style trailer) of both series (25.12:
// apk, `repositories`; 24.10: opkg, `repositories.conf`): a good build passes every check with the
// rockchip layout, the same partition table on both; each known failure becomes its own clear error in
// the package manager's own wording; a broken result (no image, wrong checksum, wrong board, wrong
// layout) is caught.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { parseBoardConfig, type BoardConfig } from '../../../../src/image/core/board.js';
import { ImageError } from '../../../../src/image/core/errors.js';
import { appendFwMetadata, readFwMetadata } from '../../../../src/image/core/fw-metadata.js';
import {
  makeImage,
  makeInfo,
  makeManifest,
  pointFeedsAtMirror,
  prepareForUser,
  unpackImageBuilder,
  DEFAULT_BUILD_USER,
  type ImageRequest,
} from '../../../../src/image/adapters/imagebuilder.js';
import { checkBuildResult, dropImageSignatures } from '../../../../src/image/adapters/result-check.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { seriesOf } from '../../../../src/image/core/series.js';
import { OPENWRT, OPENWRT_OLD, packStandInImageBuilder, REPO, writeStandInFeeds } from './stand-in.js';

const isRoot = process.getuid?.() === 0;
const BOARD: BoardConfig = { ...parseBoardConfig(readFileSync(join(REPO, 'board/nanopi-r3s/board.json'), 'utf8')), rootfsPartsizeMib: 8 };

const VERSIONS = [OPENWRT, OPENWRT_OLD];
let work: string;
const ibDirs = new Map<string, string>();
const tarballs = new Map<string, string>();
const goods = new Map<string, string>(); // BIN_DIR of one successful build per version
let good: string; // the default version's, copied by the "broken result" tests

function opts(version = OPENWRT) {
  return { ibDir: ibDirs.get(version) ?? '', sourceDateEpoch: 1_700_000_000, user: isRoot ? DEFAULT_BUILD_USER : undefined };
}

function overlay(name: string, extra?: (dir: string) => void): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'etc/init.d'), { recursive: true });
  writeFileSync(join(dir, 'etc/init.d/connector'), '#!/bin/sh /etc/rc.common\nUSE_PROCD=1\nSTART=95\n');
  chmodSync(join(dir, 'etc/init.d/connector'), 0o755);
  extra?.(dir);
  return dir;
}

async function request(name: string, packages: readonly string[], files: string): Promise<ImageRequest> {
  const binDir = join(work, `bin-${name}-${Math.random().toString(36).slice(2, 8)}`);
  await prepareForUser([binDir], isRoot ? DEFAULT_BUILD_USER : undefined);
  return { packages, filesDir: files, binDir, extraImageName: 'connector-test', disabledServices: [] };
}

async function failureOf(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ImageError) return e;
    throw e;
  }
  assert.fail('expected an ImageError');
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'ck-ib-test-'));
  execFileSync('chmod', ['755', work]);
  for (const v of VERSIONS) {
    const tarball = packStandInImageBuilder(join(work, `pack-${v}`), v);
    tarballs.set(v, tarball.path);
    const ibDir = await unpackImageBuilder(tarball.path, join(work, `ib-${v}`));
    writeStandInFeeds(join(work, 'mirror'), v);
    const feeds = await pointFeedsAtMirror(ibDir, join(work, 'mirror'), false, seriesOf(v));
    assert.equal(feeds.length, 4);
    await prepareForUser([join(work, `ib-${v}`)], isRoot ? DEFAULT_BUILD_USER : undefined);
    ibDirs.set(v, ibDir);
  }
});

after(() => rmSync(work, { recursive: true, force: true }));

for (const v of VERSIONS) {
  test(`${v} stand-in build: make info/manifest/image, then every result check passes`, async () => {
    const info = await makeInfo(opts(v), BOARD);
    assert.equal(info.revision, 'STAND-IN-r28xxx');
    const req = await request('good', ['kmod-tun', '-ppp', '-ppp-mod-pppoe'], overlay('ov-good'));
    const manifest = await makeManifest(opts(v), BOARD, req);
    const names = manifest.map((m) => m.name);
    assert.ok(names.includes('kmod-tun') && names.includes('kmod-r8169'));
    assert.ok(!names.includes('ppp'), '-ppp removes a default package');
    assert.ok(names.includes(seriesOf(v).packageManagerPackage), `${v} carries ${seriesOf(v).packageManagerPackage}`);
    await makeImage(opts(v), BOARD, req);
    const image = await checkBuildResult(req.binDir, BOARD);
    assert.equal(image.file, `openwrt-${v}-connector-test-rockchip-armv8-friendlyarm_nanopi-r3s-squashfs-sysupgrade.img.gz`);
    assert.deepEqual(image.metadata.supported_devices, ['friendlyarm,nanopi-r3s']);
    if (isRoot) assert.equal(statSync(image.path).uid, DEFAULT_BUILD_USER.uid, 'make ran as the unprivileged build user');
    goods.set(v, req.binDir);
    if (v === OPENWRT) good = req.binDir;

    // Look inside with the real tools: sfdisk layout and the squashfs holding our FILES.
    const bytes = readFileSync(image.path);
    const md = readFwMetadata(bytes);
    assert.ok(md.ok);
    const disk = join(work, `disk-${v}.img`);
    writeFileSync(disk, gunzipSync(bytes.subarray(0, md.payloadLength)));
    const pt = JSON.parse(execFileSync('sfdisk', ['-J', disk], { encoding: 'utf8' })) as {
      partitiontable: { label: string; partitions: { start: number; size: number }[] };
    };
    assert.equal(pt.partitiontable.label, 'dos');
    assert.deepEqual(
      pt.partitiontable.partitions.map((p) => [p.start / 2048, p.size / 2048]),
      [
        [32, 16],
        [64, 8],
      ],
      'p1 at 32 MiB (16 MiB), p2 at 64 MiB (ROOTFS_PARTSIZE)',
    );
    const rootfs = join(work, `rootfs-${v}.squashfs`);
    execFileSync('dd', [`if=${disk}`, `of=${rootfs}`, 'bs=1M', 'skip=64', 'count=8', 'status=none']);
    const listing = execFileSync('unsquashfs', ['-l', '-d', '', rootfs], { encoding: 'utf8' });
    assert.match(listing, /\/etc\/init\.d\/connector\n/);
    assert.match(listing, /\/etc\/rc\.d\/S95connector\n/, 'the init script was enabled like rootfs.mk does');
  });

  test(`${v}: a package the release does not have is reported by name (missing-package)`, async () => {
    const req = await request('missing', ['kmod-tun', 'no-such-package'], overlay('ov-missing'));
    const e = await failureOf(makeManifest(opts(v), BOARD, req));
    assert.equal(e.reason, 'missing-package');
    assert.match(e.message, /no-such-package/);
  });

  test(`${v}: a kmod built for another kernel is reported as a kmod mismatch`, async () => {
    const req = await request('kmod', ['kmod-tun', 'kmod-stale'], overlay('ov-kmod'));
    const e = await failureOf(makeImage(opts(v), BOARD, req));
    assert.equal(e.reason, 'kmod-mismatch');
    assert.match(e.message, /kmod-stale \(wants kernel 6\.6\.73-1-f35e93bc2c89b98d107e57cdea041972\)/);
  });

  test(`${v}: a rootfs larger than ROOTFS_PARTSIZE is reported even though make exits 0`, async () => {
    const req = await request(
      'big',
      ['kmod-tun'],
      overlay('ov-big', (d) => writeFileSync(join(d, 'blob.bin'), randomBytes(10 * 1024 * 1024))),
    );
    const e = await failureOf(makeImage(opts(v), BOARD, req));
    assert.equal(e.reason, 'rootfs-too-big');
    assert.match(e.message, /ROOTFS_PARTSIZE=8 MiB/);
    assert.deepEqual(
      readdirSync(req.binDir).filter((f) => f.endsWith('.img.gz')),
      [],
      'the stand-in, like the real one, left no image',
    );
  });

  test(`${v}: a package feed missing from the mirror is named, with what the mirror must hold`, async () => {
    const kmods = join(work, `mirror/downloads.openwrt.org/releases/${v}/targets/rockchip/armv8/kmods`);
    renameSync(kmods, `${kmods}.away`);
    try {
      const req = await request('nofeed', ['kmod-tun'], overlay('ov-nofeed'));
      const e = await failureOf(makeManifest(opts(v), BOARD, req));
      assert.equal(e.reason, 'package-feed-missing');
      const kernel = readdirSync(`${kmods}.away`)[0] ?? '';
      const named = seriesOf(v).packageManager === 'opkg' ? `file://${kmods}/${kernel}` : `${kmods}/${kernel} (No such file or directory)`;
      assert.ok(e.message.includes(named), e.message);
      assert.ok(e.message.includes(seriesOf(v).feedIndex === 'packages.adb' ? 'packages.adb' : 'Packages.gz'), e.message);
    } finally {
      renameSync(`${kmods}.away`, kmods);
    }
  });
}

test('an ImageBuilder without the board profile is refused at make info', async () => {
  const e = await failureOf(makeInfo(opts(), { ...BOARD, profile: 'friendlyarm_nanopi-r6s' }));
  assert.equal(e.reason, 'ib-info-mismatch');
});

function broken(name: string): string {
  assert.ok(good, 'the good build ran first');
  const dir = join(work, `broken-${name}`);
  cpSync(good, dir, { recursive: true });
  return dir;
}

const imageIn = (dir: string): string => join(dir, readdirSync(dir).find((f) => f.endsWith('.img.gz')) ?? 'none');
const resum = (dir: string): void => {
  const img = imageIn(dir);
  const h = createHash('sha256').update(readFileSync(img)).digest('hex');
  writeFileSync(join(dir, 'sha256sums'), `${h} *${img.slice(dir.length + 1)}\n`);
};

test('broken result: no image in BIN_DIR', async () => {
  const dir = broken('missing');
  unlinkSync(imageIn(dir));
  assert.equal((await failureOf(checkBuildResult(dir, BOARD))).reason, 'image-missing');
});

test('broken result: image bytes that do not match sha256sums', async () => {
  const dir = broken('checksum');
  const img = imageIn(dir);
  const b = readFileSync(img);
  b[100] = (b[100] as number) ^ 1;
  writeFileSync(img, b);
  assert.equal((await failureOf(checkBuildResult(dir, BOARD))).reason, 'image-checksum');
});

test('broken result: metadata naming another board', async () => {
  const dir = broken('board');
  const img = imageIn(dir);
  const md = readFwMetadata(readFileSync(img));
  assert.ok(md.ok);
  const payload = readFileSync(img).subarray(0, md.payloadLength);
  writeFileSync(img, appendFwMetadata(payload, { ...md.metadata, supported_devices: ['friendlyarm,nanopi-r2s'] }));
  resum(dir);
  const e = await failureOf(checkBuildResult(dir, BOARD));
  assert.equal(e.reason, 'image-board');
  assert.match(e.message, /nanopi-r2s/);
});

test('broken result: an image whose rootfs partition is not ROOTFS_PARTSIZE', async () => {
  const e = await failureOf(checkBuildResult(good, { ...BOARD, rootfsPartsizeMib: 104 }));
  assert.equal(e.reason, 'image-layout');
  assert.match(e.message, /p2 is 8 MiB, expected ROOTFS_PARTSIZE 104/);
});

test('24.10 (repositories.conf): online, only the feeds the mirror has are redirected to it', async () => {
  const ib = join(work, 'fake-ib');
  mkdirSync(ib, { recursive: true });
  writeFileSync(
    join(ib, 'repositories.conf'),
    'src/gz a https://downloads.example.org/feed/a\nsrc/gz b https://downloads.example.org/feed/b/\nsrc imagebuilder file:packages\n',
  );
  const mirror = join(work, 'partial-mirror');
  mkdirSync(join(mirror, 'downloads.example.org/feed/a'), { recursive: true });
  assert.deepEqual(await pointFeedsAtMirror(ib, mirror, true, seriesOf(OPENWRT_OLD)), [join(mirror, 'downloads.example.org/feed/a')]);
  assert.equal(
    readFileSync(join(ib, 'repositories.conf'), 'utf8'),
    `src/gz a file://${mirror}/downloads.example.org/feed/a\nsrc/gz b https://downloads.example.org/feed/b/\nsrc imagebuilder file:packages\n`,
  );
});

test('25.12 (repositories): online, only the indexes the mirror has are redirected; commented feeds stay so', async () => {
  const ib = join(work, 'fake-ib-apk');
  mkdirSync(ib, { recursive: true });
  writeFileSync(
    join(ib, 'repositories'),
    'https://downloads.example.org/feed/a/packages.adb\nhttps://downloads.example.org/feed/b/packages.adb\n# https://downloads.example.org/feed/a/packages.adb\n',
  );
  const mirror = join(work, 'partial-mirror-apk');
  mkdirSync(join(mirror, 'downloads.example.org/feed/a'), { recursive: true });
  assert.deepEqual(await pointFeedsAtMirror(ib, mirror, true, seriesOf(OPENWRT)), [join(mirror, 'downloads.example.org/feed/a')]);
  assert.equal(
    readFileSync(join(ib, 'repositories'), 'utf8'),
    `${mirror}/downloads.example.org/feed/a/packages.adb\nhttps://downloads.example.org/feed/b/packages.adb\n# https://downloads.example.org/feed/a/packages.adb\n`,
  );
  // an ImageBuilder of the other series has no such file: said plainly
  await assert.rejects(
    pointFeedsAtMirror(ib, mirror, true, seriesOf(OPENWRT_OLD)),
    /has no repositories\.conf: is the tarball of another series/,
  );
});

test('ROOTFS_PARTSIZE and the partition table are the same for both series (sysupgrade keeps the layout)', () => {
  const table = (v: string): string => {
    const dir = goods.get(v);
    assert.ok(dir, `${v} build ran`);
    const bytes = readFileSync(imageIn(dir));
    const md = readFwMetadata(bytes);
    assert.ok(md.ok);
    const disk = join(work, `pt-${v}.img`);
    writeFileSync(disk, gunzipSync(bytes.subarray(0, md.payloadLength)));
    const pt = JSON.parse(execFileSync('sfdisk', ['-J', disk], { encoding: 'utf8' })) as {
      partitiontable: { partitions: { start: number; size: number; type: string }[] };
    };
    return JSON.stringify(pt.partitiontable.partitions.map((p) => [p.start, p.size, p.type]));
  };
  assert.equal(table(OPENWRT), table(OPENWRT_OLD));
});

for (const v of VERSIONS) {
  test(`${v}: two builds, each from a fresh unpack, give byte-identical images once the IB's build-key signature is dropped`, async () => {
    const series = seriesOf(v);
    const images: Buffer[] = [];
    const raw: Buffer[] = [];
    for (const n of [1, 2]) {
      const dir = await unpackImageBuilder(tarballs.get(v) ?? '', join(work, `repro-${v}-${n}`));
      await pointFeedsAtMirror(dir, join(work, 'mirror'), false, series);
      await prepareForUser([join(work, `repro-${v}-${n}`)], isRoot ? DEFAULT_BUILD_USER : undefined);
      const req = await request(`repro-${v}-${n}`, ['kmod-tun'], overlay(`ov-repro-${v}-${n}`));
      await makeImage({ ...opts(v), ibDir: dir }, BOARD, req);
      const checked = await checkBuildResult(req.binDir, BOARD);
      raw.push(readFileSync(checked.path));
      const image = await dropImageSignatures(checked, series, silentLogger);
      const bytes = readFileSync(image.path);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), image.sha256, 'the returned hash is of the rewritten file');
      assert.ok(readFwMetadata(bytes).ok);
      images.push(bytes);
    }
    // the stand-in models the real difference: 24.10 signs with a key made per unpack, 25.12 does not
    assert.equal((raw[0] as Buffer).equals(raw[1] as Buffer), !series.ibSignsImagesWithRandomKey, 'raw IB output');
    assert.ok((images[0] as Buffer).equals(images[1] as Buffer), 'published images are identical');
  });
}
