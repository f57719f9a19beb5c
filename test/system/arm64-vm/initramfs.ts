// SPDX-License-Identifier: UNLICENSED
// The test VM's boot files from the pinned Debian arm64 .debs (unpacked with dpkg-deb, never installed):
// the kernel, and an initramfs holding a static busybox, our /init and the kernel modules the test needs,
// in the order their .modinfo `depends=` gives (the deb ships no modules.dep: depmod runs in postinst).
// The cpio is written here (newc, owner 0:0, mtime 0, sorted names): no cpio binary, no root, same bytes
// from the same inputs.
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { exec } from '../../../src/shared/exec.js';

/** What the agent and the harness need in the guest; dependencies are added from .modinfo. */
export const VM_MODULES = ['virtio_pci', 'virtio_net', 'virtio_blk', 'virtio-rng', 'tun', 'bridge', '9pnet_virtio', '9p'] as const;

export interface BootFiles {
  kernel: string;
  initrd: string;
  kernelRelease: string;
  modules: string[];
}

const norm = (name: string): string => name.replace(/-/g, '_');

function depends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const v = ko.subarray(at + '\0depends='.length, end).toString('latin1');
  return v ? v.split(',') : [];
}

function findKos(dir: string, out: Map<string, string>): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findKos(p, out);
    else if (e.name.endsWith('.ko')) out.set(norm(e.name.slice(0, -3)), p);
  }
}

/** Modules in load order: each after everything it depends on. */
export function moduleOrder(moduleDir: string, wanted: readonly string[]): { name: string; path: string }[] {
  const kos = new Map<string, string>();
  findKos(join(moduleDir, 'kernel'), kos);
  let builtin = '';
  try {
    builtin = norm(readFileSync(join(moduleDir, 'modules.builtin'), 'utf8'));
  } catch {
    builtin = '';
  }
  const order: { name: string; path: string }[] = [];
  const seen = new Set<string>();
  const visit = (raw: string): void => {
    const n = norm(raw);
    if (seen.has(n)) return;
    seen.add(n);
    const path = kos.get(n);
    if (!path) {
      if (builtin.includes(`/${n}.ko\n`)) return;
      throw new Error(`kernel module ${raw} is neither a module nor built in (${moduleDir})`);
    }
    for (const d of depends(readFileSync(path))) visit(d);
    order.push({ name: n, path });
  };
  for (const m of wanted) visit(m);
  return order;
}

/** A newc cpio of `root` plus declared character devices (no mknod needed). */
export function newcCpio(root: string, devices: readonly { name: string; mode: number; major: number; minor: number }[]): Buffer {
  const out: Buffer[] = [];
  let ino = 1;
  const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
  const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  const entry = (name: string, mode: number, data = Buffer.alloc(0), rmaj = 0, rmin = 0): void => {
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rmaj, rmin, nameBuf.length, 0];
    out.push(Buffer.from(`070701${fields.map(hex).join('')}`), nameBuf, pad4(110 + nameBuf.length), data, pad4(data.length));
  };
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, r));
      const perm = st.mode & 0o7777;
      if (st.isDirectory()) {
        entry(r, 0o040000 | perm);
        walk(r);
      } else if (st.isSymbolicLink()) entry(r, 0o120777, Buffer.from(readlinkSync(join(root, r))));
      else if (st.isFile()) entry(r, 0o100000 | perm, readFileSync(join(root, r)));
      else throw new Error(`initramfs: unsupported file type at ${r}`);
    }
  };
  walk('');
  for (const d of devices) entry(d.name, 0o020000 | d.mode, undefined, d.major, d.minor);
  entry('TRAILER!!!', 0);
  const all = Buffer.concat(out);
  return Buffer.concat([all, Buffer.alloc((512 - (all.length % 512)) % 512)]);
}

/** Unpacks the debs under `work` and writes `work/vmlinuz` and `work/initrd.cpio.gz`. */
export async function buildBootFiles(o: { kernelDeb: string; busyboxDeb: string; init: string; work: string }): Promise<BootFiles> {
  const k = join(o.work, 'kernel-deb');
  const b = join(o.work, 'busybox-deb');
  mkdirSync(o.work, { recursive: true });
  // Asynchronous: the lab comes up at the same time.
  await Promise.all([exec('dpkg-deb', ['-x', o.kernelDeb, k]), exec('dpkg-deb', ['-x', o.busyboxDeb, b])]);
  const releases = readdirSync(join(k, 'lib/modules'));
  if (releases.length !== 1) throw new Error(`expected one kernel in ${o.kernelDeb}, found: ${releases.join(', ')}`);
  const kernelRelease = releases[0] as string;
  const order = moduleOrder(join(k, 'lib/modules', kernelRelease), VM_MODULES);

  const root = join(o.work, 'root');
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'mnt', 'lib/modules']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(join(b, 'bin/busybox'), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  copyFileSync(o.init, join(root, 'init'));
  chmodSync(join(root, 'init'), 0o755);
  for (const m of order) copyFileSync(m.path, join(root, 'lib/modules', `${m.name}.ko`));
  writeFileSync(join(root, 'lib/modules/load-order'), order.map((m) => `${m.name}.ko\n`).join(''));

  const kernel = join(o.work, 'vmlinuz');
  copyFileSync(join(k, 'boot', `vmlinuz-${kernelRelease}`), kernel);
  const initrd = join(o.work, 'initrd.cpio.gz');
  const cpio = newcCpio(root, [
    { name: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { name: 'dev/null', mode: 0o666, major: 1, minor: 3 },
  ]);
  writeFileSync(initrd, await promisify(gzip)(cpio, { level: 6 }));
  return { kernel, initrd, kernelRelease, modules: order.map((m) => m.name) };
}
