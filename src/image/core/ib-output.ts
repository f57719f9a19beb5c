// SPDX-License-Identifier: UNLICENSED
// Reading what the OpenWrt ImageBuilder prints: `make info`, `make manifest`, and the known ways
// `make image` fails. Pure: text in, facts or an ImageError out.
import { ImageError } from './errors.js';

export interface IbProfile {
  readonly name: string;
  readonly title: string;
  readonly packages: readonly string[];
  readonly supportedDevices: readonly string[];
}

export interface IbInfo {
  readonly target: string;
  readonly architecture: string;
  readonly revision: string;
  readonly defaultPackages: readonly string[];
  readonly profiles: ReadonlyMap<string, IbProfile>;
}

export function parseMakeInfo(text: string): IbInfo {
  const field = (label: string): string => {
    const m = new RegExp(`^${label}:\\s*"?([^"\\n]*)"?\\s*$`, 'm').exec(text);
    return m ? (m[1] as string).trim() : '';
  };
  const profiles = new Map<string, IbProfile>();
  const at = text.indexOf('Available Profiles:');
  if (at >= 0) {
    let cur: { name: string; title: string; packages: string[]; supportedDevices: string[] } | undefined;
    for (const line of text.slice(at).split('\n').slice(1)) {
      const head = /^([A-Za-z0-9_.,-]+):\s*$/.exec(line);
      if (head) {
        cur = { name: head[1] as string, title: '', packages: [], supportedDevices: [] };
        profiles.set(cur.name, cur);
        continue;
      }
      if (!cur) continue;
      const kv = /^\s+(Packages|SupportedDevices):\s*(.*)$/.exec(line);
      if (kv) {
        const list = (kv[2] as string).split(/\s+/).filter(Boolean);
        if (kv[1] === 'Packages') cur.packages = list;
        else cur.supportedDevices = list;
      } else if (/^\s+\S/.test(line) && cur.title === '' && !/:\s/.test(line.trim())) {
        cur.title = line.trim();
      }
    }
  }
  return {
    target: field('Current Target'),
    architecture: field('Current Architecture'),
    revision: field('Current Revision'),
    defaultPackages: field('Default Packages').split(/\s+/).filter(Boolean),
    profiles,
  };
}

/** Checks `make info` against the board before anything is built. */
export function checkInfo(info: IbInfo, want: { target: string; profile: string; boardName: string }): IbProfile {
  if (info.target !== want.target) {
    throw new ImageError(
      'ib-info-mismatch',
      `ImageBuilder is for target "${info.target}", the board needs "${want.target}": wrong ImageBuilder tarball in the lock file`,
    );
  }
  const p = info.profiles.get(want.profile);
  if (!p) {
    const have = [...info.profiles.keys()].slice(0, 20).join(', ');
    throw new ImageError(
      'ib-info-mismatch',
      `ImageBuilder has no profile "${want.profile}" (it has: ${have}); the release may predate the board (R3S needs OpenWrt 24.10.0 or later)`,
    );
  }
  if (p.supportedDevices.length > 0 && !p.supportedDevices.includes(want.boardName)) {
    throw new ImageError('ib-info-mismatch', `profile ${want.profile} supports ${p.supportedDevices.join(', ')}, not ${want.boardName}`);
  }
  return p;
}

export interface ManifestEntry {
  readonly name: string;
  readonly version: string;
}

/** `make manifest` prints one `<package> - <version>` line per package of the image. */
export function parseManifest(text: string): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._+-]*) - (\S+)\s*$/.exec(line);
    if (m) out.push({ name: m[1] as string, version: m[2] as string });
  }
  return out;
}

function uniq(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/**
 * Maps ImageBuilder output to the failure a release engineer can act on, or undefined when none of the
 * known shapes is present. Checked also after a successful `make`: size failures only print a warning.
 */
export function classifyIbOutput(output: string, rootfsPartsizeMib: number): ImageError | undefined {
  if (/Prerequisite check failed/.test(output)) {
    const what = uniq([...output.matchAll(/Build dependency: (.+)$/gm)].map((m) => (m[1] as string).trim()));
    return new ImageError(
      'prereq-missing',
      `ImageBuilder host prerequisites missing${what.length ? `: ${what.join('; ')}` : ''}. Install them (see docs/image.md, "Host requirements").`,
    );
  }
  // opkg (24.10) names the feed; apk (25.12) names the index with its error ("network error", "No such
  // file or directory", "UNTRUSTED signature"), after a WARNING or ERROR prefix.
  const opkgFeeds = [...output.matchAll(/Failed to download the package list from (\S+?)\/Packages\.gz/g)].map((m) => m[1] as string);
  const apkFeeds = [...output.matchAll(/^(?:WARNING|ERROR): (?:[^\n]*? )?((?:https?:\/\/|\/)\S+?)\/packages\.adb: ([^\n]+)$/gm)].map(
    (m) => `${m[1] as string} (${(m[2] as string).trim()})`,
  );
  const feeds = uniq([...opkgFeeds, ...apkFeeds]);
  if (feeds.length > 0) {
    const what = apkFeeds.length > 0 ? 'packages.adb and the .apk files' : 'Packages.gz, Packages.sig and the .ipk files';
    return new ImageError(
      'package-feed-missing',
      `the ImageBuilder cannot read these OpenWrt package feeds: ${feeds.join(', ')}. Offline, the mirror must hold each feed directory ` +
        `(${what} the image needs) under its host/path; see docs/image.md, "Package feeds".`,
    );
  }
  const kmods = [
    ...[...output.matchAll(/cannot find dependency kernel \(= ([^)]+)\) for (\S+)/g)].map(
      (m) => `${m[2] as string} (wants kernel ${m[1] as string})`,
    ),
    ...[...output.matchAll(/Cannot satisfy the following dependencies for (kmod-\S+?):?\s*\n\s*\*\s*kernel \(= ([^)]+)\)/g)].map(
      (m) => `${m[1] as string} (wants kernel ${m[2] as string})`,
    ),
    // apk's solver: "unable to select packages:" then, per conflict, "breaks:"/"conflicts:" lines naming
    // the kmod with its constraint, e.g. kmod-tun-6.12.71-r1[kernel=6.12.71~e30f...-r1].
    ...(/unable to select packages/.test(output)
      ? [...output.matchAll(/(kmod-[A-Za-z0-9._+-]+?)-\d[^\s[]*\[kernel=([^\]]+)\]/g)].map(
          (m) => `${m[1] as string} (wants kernel ${m[2] as string})`,
        )
      : []),
  ];
  if (kmods.length > 0) {
    return new ImageError(
      'kmod-mismatch',
      `kernel module(s) built for another kernel: ${uniq(kmods).join(', ')}. Kmods must come from the kmods/<vermagic> repository of the same OpenWrt release as the ImageBuilder.`,
    );
  }
  const missing = uniq([
    ...[...output.matchAll(/Cannot install package ([^\s.]+(?:\.[^\s.]+)*)\./g)].map((m) => m[1] as string),
    ...[...output.matchAll(/Unknown package '([^']+)'/g)].map((m) => m[1] as string),
    ...[...output.matchAll(/^\s*(\S+) \(no such package\)/gm)].map((m) => m[1] as string),
  ]);
  if (missing.length > 0) {
    return new ImageError(
      'missing-package',
      `package(s) not available for this release/target: ${missing.join(', ')}. Check the names in board/<board>/board.json against the release's package index.`,
    );
  }
  const clash =
    /check_data_file_clashes: Package (\S+) wants to install file (\S+)\s+But that file is already provided by package\s+(?:\*\s*)?(\S+)/.exec(
      output,
    );
  // apk names packages with their version (name-1.2.3-r1); PACKAGES wants the bare name.
  const apkName = (nv: string): string => /^(.+?)-\d[^-]*-r\d+$/.exec(nv)?.[1] ?? nv;
  const apkClash = /ERROR: (\S+?): trying to overwrite (\S+) owned by (\S+?)\.?$/m.exec(output);
  const c = clash
    ? [clash[1], clash[2], clash[3]]
    : apkClash
      ? [apkName(apkClash[1] as string), apkClash[2], apkName(apkClash[3] as string)]
      : undefined;
  if (c) {
    return new ImageError(
      'package-conflict',
      `packages ${c[0] as string} and ${c[2] as string} both install ${c[1] as string}; remove one (e.g. "-${c[2] as string}" in PACKAGES)`,
    );
  }
  if (/is too big|images are too big|out of space\?|failed to allocate \d+ blocks/.test(output)) {
    return new ImageError(
      'rootfs-too-big',
      `the root filesystem does not fit into ROOTFS_PARTSIZE=${rootfsPartsizeMib} MiB. Remove packages or overlay files, or raise rootfsPartsizeMib in board.json (this changes the partition layout: the next sysupgrade rewrites the whole disk).`,
    );
  }
  return undefined;
}
