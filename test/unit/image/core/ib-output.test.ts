// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageError } from '../../../../src/image/core/errors.js';
import { checkInfo, classifyIbOutput, parseMakeInfo, parseManifest } from '../../../../src/image/core/ib-output.js';

const INFO = `Current Target: "rockchip/armv8"
Current Architecture: "aarch64"
Current Revision: "r28739-d9340319c6"
Default Packages: base-files ca-bundle dnsmasq dropbear
Available Profiles:

friendlyarm_nanopi-r2s:
    FriendlyARM NanoPi R2S
    Packages: kmod-usb-net-rtl8152
    hasImageMetadata: 1
    SupportedDevices: friendlyarm,nanopi-r2s
friendlyarm_nanopi-r3s:
    FriendlyARM NanoPi R3S
    Packages: kmod-r8169
    hasImageMetadata: 1
    SupportedDevices: friendlyarm,nanopi-r3s
`;

const R3S = { target: 'rockchip/armv8', profile: 'friendlyarm_nanopi-r3s', boardName: 'friendlyarm,nanopi-r3s' };

test('make info: target, revision, default packages and profiles', () => {
  const info = parseMakeInfo(INFO);
  assert.equal(info.target, 'rockchip/armv8');
  assert.equal(info.revision, 'r28739-d9340319c6');
  assert.deepEqual(info.defaultPackages, ['base-files', 'ca-bundle', 'dnsmasq', 'dropbear']);
  const p = checkInfo(info, R3S);
  assert.equal(p.title, 'FriendlyARM NanoPi R3S');
  assert.deepEqual(p.packages, ['kmod-r8169']);
  assert.deepEqual(p.supportedDevices, ['friendlyarm,nanopi-r3s']);
});

test('make info for another target or without the profile is refused before building', () => {
  const reason = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      return e instanceof ImageError ? e.reason : 'other';
    }
    return undefined;
  };
  assert.equal(
    reason(() => checkInfo(parseMakeInfo(INFO.replace('rockchip/armv8', 'x86/64')), R3S)),
    'ib-info-mismatch',
  );
  assert.equal(
    reason(() => checkInfo(parseMakeInfo(INFO.replace(/friendlyarm_nanopi-r3s:[\s\S]*/, '')), R3S)),
    'ib-info-mismatch',
  );
});

test('make manifest lines become name/version pairs', () => {
  assert.deepEqual(parseManifest('base-files - 1640-r28739\nkmod-tun - 6.6.144-r1\nnoise line\n'), [
    { name: 'base-files', version: '1640-r28739' },
    { name: 'kmod-tun', version: '6.6.144-r1' },
  ]);
});

const cases: [string, string, RegExp][] = [
  ['WARNING: Image file /b/root.squashfs is too big: 700000000 > 536870912', 'rootfs-too-big', /ROOTFS_PARTSIZE=512/],
  ['ext4_allocate_best_fit_partial: failed to allocate 12 blocks, out of space?', 'rootfs-too-big', /does not fit/],
  [
    ' * opkg_install_cmd: Cannot install package kmod-foo.\n * opkg_install_cmd: Cannot install package luci-app-x.',
    'missing-package',
    /kmod-foo, luci-app-x/,
  ],
  ["Unknown package 'tcpdump-mini'.", 'missing-package', /tcpdump-mini/],
  ['ERROR: unable to select packages:\n  nonexistent (no such package):', 'missing-package', /nonexistent/],
  [
    ' * satisfy_dependencies_for: Cannot satisfy the following dependencies for kmod-tun:\n * \tkernel (= 6.6.73-1-f35e93bc2c89b98d107e57cdea041972)',
    'kmod-mismatch',
    /kmod-tun \(wants kernel 6\.6\.73-1-f35e/,
  ],
  ['cannot find dependency kernel (= 6.6.73-1-abc) for kmod-vxlan', 'kmod-mismatch', /kmod-vxlan/],
  ['Prerequisite check failed. Use FORCE=1 to override.', 'prereq-missing', /prerequisites/],
  [
    ' * opkg_update_cmd: Failed to download the package list from file:///m/downloads.openwrt.org/releases/24.10.8/packages/aarch64_generic/base/Packages.gz.\n * opkg_install_cmd: Cannot install package dnsmasq.',
    'package-feed-missing',
    /file:\/\/\/m\/downloads\.openwrt\.org\/releases\/24\.10\.8\/packages\/aarch64_generic\/base\./,
  ],
  [
    ' * check_data_file_clashes: Package dnsmasq-full wants to install file /usr/sbin/dnsmasq\n\tBut that file is already provided by package  * dnsmasq',
    'package-conflict',
    /-dnsmasq/,
  ],
];

for (const [output, reason, message] of cases) {
  test(`ImageBuilder output maps to ${reason}: ${output.split('\n')[0]?.slice(0, 50)}`, () => {
    const e = classifyIbOutput(output, 512);
    assert.ok(e, 'recognised');
    assert.equal(e.reason, reason);
    assert.match(e.message, message);
  });
}

test('ordinary ImageBuilder chatter is not a failure', () => {
  assert.equal(classifyIbOutput('Building images for rockchip - FriendlyARM NanoPi R3S\nPackages: base-files\n', 512), undefined);
});

test("apk (25.12): an unreadable feed index is package-feed-missing, naming the index and apk's reason", () => {
  const out =
    'WARNING: updating and opening https://downloads.openwrt.org/releases/25.12.5/targets/rockchip/armv8/packages/packages.adb: network error\n' +
    'WARNING: updating and opening /srv/mirror/downloads.openwrt.org/releases/25.12.5/packages/aarch64_generic/base/packages.adb: No such file or directory\n' +
    'ERROR: unable to select packages:\n';
  const e = classifyIbOutput(out, 512);
  assert.ok(e instanceof ImageError);
  assert.equal(e.reason, 'package-feed-missing');
  assert.match(e.message, /targets\/rockchip\/armv8\/packages \(network error\)/);
  assert.match(e.message, /aarch64_generic\/base \(No such file or directory\)/);
  assert.match(e.message, /packages\.adb and the \.apk files/);
});

test("apk (25.12): a missing package and a kmod for another kernel, from the solver's report", () => {
  const missing = classifyIbOutput(
    'ERROR: unable to select packages:\n  kmod-nope (no such package):\n    required by: world[kmod-nope]\n',
    512,
  );
  assert.equal(missing?.reason, 'missing-package');
  assert.match(missing?.message ?? '', /kmod-nope/);
  const kmod = classifyIbOutput(
    'ERROR: unable to select packages:\n  kernel-6.12.94~5fab3a97d147fbf8146094eeebd78fd9-r1:\n    breaks: kmod-tun-6.12.71-r1[kernel=6.12.71~e30f543625695988fdad1ed84a7518c2-r1]\n',
    512,
  );
  assert.equal(kmod?.reason, 'kmod-mismatch');
  assert.match(kmod?.message ?? '', /kmod-tun \(wants kernel 6\.12\.71~e30f543625695988fdad1ed84a7518c2-r1\)/);
});

test('apk (25.12): two packages installing one file is a package-conflict with bare names', () => {
  const e = classifyIbOutput('ERROR: ip-full-6.11.0-r1: trying to overwrite usr/sbin/ip owned by ip-tiny-6.11.0-r1.\n', 512);
  assert.equal(e?.reason, 'package-conflict');
  assert.match(e?.message ?? '', /packages ip-full and ip-tiny both install usr\/sbin\/ip; remove one \(e\.g\. "-ip-tiny"/);
});
