// SPDX-License-Identifier: UNLICENSED
// The factory station end to end through the CLI, on a STAND-IN for an OpenWrt rockchip image built here
// with sfdisk, mkfs.ext4 and mksquashfs (MBR, p1 "kernel" ext4 at 32 MiB, p2 squashfs rootfs after it,
// fake idbloader at sector 64 and fake u-boot.itb at 8 MiB). It is not a real OpenWrt build.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { exec, execSync, type ExecResult } from '../../../src/shared/exec.js';
import { readFactoryBlock } from '../../../src/shared/factory-block/block-io.js';
import { FACTORY_BLOCK_OFFSET, FACTORY_REGION_SIZE } from '../../../src/shared/factory-block/factory-block.js';
import { MANIFEST_COLUMNS } from '../../../src/factory/core/batch-manifest.js';
import { gatherTargetFacts } from '../../../src/factory/adapters/target-facts.js';
import { createSelfSignedCa, generateKeyPair } from '../../../src/shared/pki/x509.js';
import { tempDir } from '../../helpers/tmp.js';
import { skipUnlessCi, skipOrFail } from '../../helpers/skip.js';

const MiB = 1024 * 1024;
const P1 = { start: 32 * MiB, size: 16 * MiB };
const P2 = { start: 48 * MiB, size: 32 * MiB };
const IMAGE_BYTES = P2.start + P2.size;
const CLI = join(process.cwd(), 'src/cli/connector.ts');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function cli(args: string[]): Promise<ExecResult> {
  return exec(process.execPath, ['--import', 'tsx', CLI, ...args], { allowFailure: true });
}

function hashRange(file: string, start: number, len: number): string {
  const fd = openSync(file, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(MiB);
    for (let pos = start; pos < start + len;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, start + len - pos), pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

function putBytes(file: string, pos: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, pos);
  } finally {
    closeSync(fd);
  }
}

/** fwtool metadata chunk as OpenWrt's append-metadata adds after the gzip stream. */
function fwtoolMetadata(): Buffer {
  const json = Buffer.from(
    JSON.stringify({ metadata_version: '1.1', compat_version: '1.0', supported_devices: ['friendlyarm,nanopi-r3s'] }),
  );
  const header = Buffer.alloc(8);
  const trailer = Buffer.alloc(16);
  trailer.writeUInt32BE(0x46577830, 0);
  trailer.writeUInt8(1, 8);
  trailer.writeUInt32BE(header.length + json.length + 16, 12);
  return Buffer.concat([header, json, trailer]);
}

interface Station {
  dir: string;
  raw: string;
  gz: string;
  caDir: string;
  anchor: string;
  manifestDir: string;
  args(serial: string, target: string, extra?: string[]): string[];
}

async function buildStation(t: TestContext): Promise<Station> {
  const dir = tempDir(t, 'ck-station-').dir;
  const raw = join(dir, 'standin-openwrt-rockchip.img');
  writeFileSync(raw, '');
  truncateSync(raw, IMAGE_BYTES);
  await exec('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', raw], {
    input: `label: dos\nstart=${P1.start / 512}, size=${P1.size / 512}, type=83\nstart=${P2.start / 512}, size=${P2.size / 512}, type=83\n`,
  });
  // bootloader stand-ins: idbloader at sector 64, u-boot.itb at 8 MiB (random bytes, must survive)
  putBytes(raw, 64 * 512, Buffer.from(Array.from({ length: 96 * 1024 }, (_, i) => (i * 7 + 3) & 0xff)));
  putBytes(raw, 8 * MiB, Buffer.from(Array.from({ length: 900 * 1024 }, (_, i) => (i * 13 + 5) & 0xff)));
  const bootDir = join(dir, 'bootfs');
  mkdirSync(bootDir);
  writeFileSync(join(bootDir, 'boot.scr'), 'stand-in boot script\n');
  writeFileSync(join(bootDir, 'kernel.img'), Buffer.alloc(256 * 1024, 0x4b));
  const p1 = join(dir, 'p1.ext4');
  writeFileSync(p1, '');
  truncateSync(p1, P1.size);
  await exec('mkfs.ext4', ['-q', '-F', '-L', 'kernel', '-d', bootDir, p1]);
  const rootDir = join(dir, 'rootfs');
  mkdirSync(join(rootDir, 'etc'), { recursive: true });
  writeFileSync(join(rootDir, 'etc', 'openwrt_release'), "DISTRIB_ID='OpenWrt stand-in'\n");
  const p2 = join(dir, 'p2.squashfs');
  await exec('mksquashfs', [rootDir, p2, '-noappend', '-quiet']);
  putBytes(raw, P1.start, readFileSync(p1));
  putBytes(raw, P2.start, readFileSync(p2));
  const gz = join(dir, 'standin-sysupgrade.img.gz');
  writeFileSync(gz, Buffer.concat([gzipSync(readFileSync(raw)), fwtoolMetadata()]));

  const caDir = join(dir, 'station', 'ca');
  const r = await cli(['factory', 'init-ca', '--dir', caDir, '--cn', 'Stand-in Factory CA']);
  assert.equal(r.code, 0, r.stderr);
  const keys = await generateKeyPair(true);
  const anchorCert = await createSelfSignedCa({ cn: 'Stand-in DC Anchor' }, keys, new Date(), new Date(Date.now() + 86_400_000));
  const anchor = join(dir, 'dc-anchor.pem');
  writeFileSync(anchor, anchorCert.toString('pem') + '\n');
  const manifestDir = join(dir, 'station', 'manifests');
  return {
    dir,
    raw,
    gz,
    caDir,
    anchor,
    manifestDir,
    args: (serial, target, extra = []) => [
      'factory',
      'provision',
      '--serial',
      serial,
      '--target',
      target,
      '--batch',
      'B2026-11',
      '--station',
      'st-01',
      '--ca-dir',
      caDir,
      '--est-url',
      'https://est.dc1.example.net:8443/.well-known/est',
      '--dc-anchor',
      anchor,
      '--manifest-dir',
      manifestDir,
      '--hw-rev',
      '1.1',
      '--mac',
      'aa:bb:cc:00:00:01',
      '--mac',
      'aa:bb:cc:00:00:02',
      ...extra,
    ],
  };
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

test('provisioning an image file keeps every partition byte-identical and leaves a valid factory block', async (t) => {
  const s = await buildStation(t);
  const out = join(s.dir, 'unit-0001.img');
  const started = Date.now();
  const r = await cli(s.args('R3S-0001', out, ['--image', s.gz]));
  assert.equal(r.code, 0, r.stderr + r.stdout);
  t.diagnostic(
    `provision (CLI start to exit, ${IMAGE_BYTES / MiB} MiB stand-in, gunzip + write + fsync + read-back + block): ${Date.now() - started} ms`,
  );

  assert.equal(statSync(out).size, IMAGE_BYTES);
  for (const [name, start, len] of [
    ['MBR + idbloader + u-boot area up to the block', 0, FACTORY_BLOCK_OFFSET],
    ['gap after the factory region', FACTORY_BLOCK_OFFSET + FACTORY_REGION_SIZE, P1.start - FACTORY_BLOCK_OFFSET - FACTORY_REGION_SIZE],
    ['p1 (ext4 kernel)', P1.start, P1.size],
    ['p2 (squashfs rootfs)', P2.start, P2.size],
  ] as const) {
    assert.equal(hashRange(out, start, len), hashRange(s.raw, start, len), `${name} changed`);
  }
  // the partitions still read as filesystems
  // p1 still checks clean as an ext4 filesystem
  const p1copy = join(s.dir, 'p1-after.ext4');
  writeFileSync(p1copy, readFileSync(out).subarray(P1.start, P1.start + P1.size));
  await exec('e2fsck', ['-fn', p1copy]);

  const read = await cli(['factory', 'read', '--target', out, '--ca', join(s.caDir, 'factory-ca.cert.pem'), '--json']);
  assert.equal(read.code, 0, read.stderr);
  const summary = JSON.parse(read.stdout) as {
    valid: boolean;
    serial: string;
    hwRev: string;
    macs: string[];
    idevid: { subject: string; fingerprint: string };
  };
  assert.equal(summary.valid, true);
  assert.equal(summary.serial, 'R3S-0001');
  assert.deepEqual(summary.macs, ['aa:bb:cc:00:00:01', 'aa:bb:cc:00:00:02']);
  assert.match(summary.idevid.subject, /CN=R3S-0001/);
  assert.doesNotMatch(read.stdout, /PRIVATE KEY/, 'read never prints the IDevID key');

  // a block signed by another factory CA does not verify against this CA
  const other = join(s.dir, 'other-ca');
  await cli(['factory', 'init-ca', '--dir', other]);
  const wrong = await cli(['factory', 'read', '--target', out, '--ca', join(other, 'factory-ca.cert.pem'), '--json']);
  assert.equal(wrong.code, 1);
  assert.equal((JSON.parse(wrong.stdout) as { valid: boolean }).valid, false);

  // a second unit, then the manifest: header + one line per unit, well-formed CSV and JSONL
  assert.equal((await cli(s.args('R3S-0002', join(s.dir, 'unit-0002.img'), ['--image', s.gz]))).code, 0);
  const csv = readFileSync(join(s.manifestDir, 'B2026-11.csv'), 'utf8');
  const rows = csv.split('\r\n').filter((l) => l !== '');
  assert.equal(rows[0], MANIFEST_COLUMNS.join(','));
  assert.equal(rows.length, 3);
  for (const row of rows.slice(1)) {
    assert.equal(row.split(',').length, MANIFEST_COLUMNS.length, `CSV row has one field per column: ${row}`);
    assert.doesNotMatch(row, /"/);
  }
  const jsonl = readFileSync(join(s.manifestDir, 'B2026-11.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    jsonl.map((j) => j['serial']),
    ['R3S-0001', 'R3S-0002'],
  );
  for (const j of jsonl) {
    assert.deepEqual(
      Object.keys(j),
      [...MANIFEST_COLUMNS].sort((a, b) => MANIFEST_COLUMNS.indexOf(a) - MANIFEST_COLUMNS.indexOf(b)),
    );
    assert.match(String(j['idevidFingerprint']), /^[0-9a-f]{64}$/);
    assert.match(String(j['imageSha256']), /^[0-9a-f]{64}$/);
    assert.ok(!Number.isNaN(Date.parse(String(j['time']))));
  }
  assert.equal(jsonl[0]?.['idevidFingerprint'], summary.idevid.fingerprint);

  // the allowlist imports into the registry that the EST server and headend read
  const reg = join(s.dir, 'registry.json');
  const imp = await cli(['registry', 'import', '--registry', reg, join(s.manifestDir, 'B2026-11.allowlist.jsonl')]);
  assert.equal(imp.code, 0, imp.stderr);
  const regDoc = JSON.parse(readFileSync(reg, 'utf8')) as { devices: Record<string, { state: string; idevidFingerprint: string }> };
  assert.equal(regDoc.devices['R3S-0001']?.state, 'allowed');
  assert.equal(regDoc.devices['R3S-0001']?.idevidFingerprint, summary.idevid.fingerprint);

  // the station keeps no IDevID key: the only private key on the station is the factory CA's
  const block = readFactoryBlock(out, FACTORY_BLOCK_OFFSET);
  assert.ok(block.ok);
  const keyBody = block.data.idevidKeyPem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  const stationFiles = walk(join(s.dir, 'station'));
  assert.ok(stationFiles.length >= 5, 'CA and manifest files are there to check');
  for (const f of stationFiles) {
    const text = readFileSync(f, 'latin1');
    if (f.endsWith('factory-ca.key.pem')) continue;
    assert.doesNotMatch(text, /PRIVATE KEY/, `${f} holds a private key`);
    assert.ok(!text.replace(/\s/g, '').includes(keyBody.slice(0, 40)), `${f} holds the IDevID key`);
  }
});

test('refusals: dry run, already provisioned, the host root disk', async (t) => {
  const s = await buildStation(t);
  // --dry-run writes nothing: no target, no manifest
  const target = join(s.dir, 'dry.img');
  const dry = await cli(s.args('R3S-0100', target, ['--image', s.gz, '--dry-run']));
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: nothing written/);
  assert.equal(existsSync(target), false);
  assert.equal(existsSync(s.manifestDir), false);

  // a unit that already has a block is not re-provisioned unless forced
  const unit = join(s.dir, 'unit.img');
  assert.equal((await cli(s.args('R3S-0101', unit, ['--image', s.gz]))).code, 0);
  const before = hashRange(unit, 0, IMAGE_BYTES);
  const again = await cli(s.args('R3S-0102', unit));
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds the factory block of R3S-0101/);
  assert.equal(hashRange(unit, 0, IMAGE_BYTES), before);
  const forced = await cli(s.args('R3S-0102', unit, ['--force']));
  assert.equal(forced.code, 0, forced.stderr);
  const b = readFactoryBlock(unit, FACTORY_BLOCK_OFFSET);
  assert.ok(b.ok && b.data.serial === 'R3S-0102');

  // the host's own root disk is refused (checked with --dry-run only, so a bug can never write to it)
  const facts = gatherTargetFacts('/');
  if (!facts.rootDisk) {
    t.diagnostic('root disk not determinable on this host; skipped that case');
    return;
  }
  const root = await cli(s.args('R3S-0103', facts.rootDisk, ['--image', s.gz, '--dry-run']));
  assert.equal(root.code, 1);
  assert.match(root.stdout, /REFUSE \[root-disk\]/);
});

test('refusals on block devices: mounted and too small', { skip: skipUnlessCi(!isRoot && 'needs root for loop devices') }, async (t) => {
  const attached: string[] = [];
  const mounts: string[] = [];
  // registered before buildStation's directory removal: unmount and detach first
  t.after(() => {
    for (const m of mounts.reverse()) execSync('umount', [m], true);
    for (const l of attached) execSync('losetup', ['-d', l], true);
  });
  const s = await buildStation(t);
  const loop = async (file: string, partscan = false): Promise<string | undefined> => {
    const r = await exec('losetup', ['-f', '--show', ...(partscan ? ['-P'] : []), file], { allowFailure: true });
    if (r.code !== 0) return undefined;
    const dev = r.stdout.trim();
    attached.push(dev);
    return dev;
  };

  // too small: a 20 MiB device cannot hold an 80 MiB image
  const small = join(s.dir, 'small.bin');
  writeFileSync(small, '');
  truncateSync(small, 20 * MiB);
  const smallDev = await loop(small);
  if (!smallDev) {
    skipOrFail(t, 'no free loop device');
    return;
  }
  const tooSmall = await cli(s.args('R3S-0200', smallDev, ['--image', s.gz]));
  assert.equal(tooSmall.code, 1);
  assert.match(tooSmall.stderr, /holds 20971520 bytes but \d+ are needed/);
  assert.equal(
    hashRange(small, 0, 20 * MiB),
    createHash('sha256')
      .update(Buffer.alloc(20 * MiB))
      .digest('hex'),
    'nothing written',
  );

  // mounted: a disk whose partition is mounted, and an image file that is loop-mounted
  const disk = join(s.dir, 'disk.img');
  writeFileSync(disk, readFileSync(s.raw));
  const diskDev = await loop(disk, true);
  assert.ok(diskDev);
  const mnt = join(s.dir, 'mnt');
  mkdirSync(mnt);
  const part = `${diskDev}p1`;
  for (let i = 0; i < 50 && !existsSync(part); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(part)) execSync('partx', ['-a', diskDev], true);
  const m = await exec('mount', ['-o', 'ro', part, mnt], { allowFailure: true });
  if (m.code !== 0) {
    t.diagnostic(`cannot mount ${part}: ${m.stderr.trim()}; mounted case skipped`);
    return;
  }
  mounts.push(mnt);
  const before = hashRange(disk, 0, IMAGE_BYTES);
  const onDev = await cli(s.args('R3S-0201', diskDev, ['--image', s.gz]));
  assert.equal(onDev.code, 1);
  assert.match(onDev.stderr, /is mounted/);
  const onFile = await cli(s.args('R3S-0202', disk));
  assert.equal(onFile.code, 1);
  assert.match(onFile.stderr, /is mounted/);
  assert.equal(hashRange(disk, 0, IMAGE_BYTES), before, 'nothing written');
});
