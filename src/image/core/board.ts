// SPDX-License-Identifier: UNLICENSED
// board/<name>/board.json: the OpenWrt target and profile, packages, partition sizes and interface names
// of one hardware model. Pure parser: JSON text in, a frozen BoardConfig out.
import { ImageError } from './errors.js';

export interface BoardConfig {
  readonly board: string;
  /** Device-tree compatible, what sysupgrade compares with the image metadata. */
  readonly boardName: string;
  readonly target: string;
  readonly profile: string;
  readonly packageArch: string;
  readonly kernelPartsizeMib: number;
  readonly rootfsPartsizeMib: number;
  readonly packages: readonly string[];
  readonly disabledServices: readonly string[];
  readonly interfaces: Readonly<{ lan: string; wan: string; tap: string; bridge: string }>;
  readonly runtimeDir: string;
  readonly agentPath: string;
}

function fail(key: string, problem: string): never {
  throw new ImageError('board-invalid', `board.json "${key}": ${problem}`);
}

export function parseBoardConfig(text: string): BoardConfig {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new ImageError('board-invalid', `board.json is not JSON: ${(e as Error).message}`);
  }
  const s = (k: string, re: RegExp): string => {
    const v = o[k];
    if (typeof v !== 'string' || !re.test(v)) fail(k, `must be a string matching ${String(re)}`);
    return v;
  };
  const mib = (k: string, min: number, max: number): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(k, `must be an integer from ${min} to ${max} (MiB)`);
    return v;
  };
  const list = (k: string, re: RegExp): string[] => {
    const v = o[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && re.test(x)))
      fail(k, `must be a list of strings matching ${String(re)}`);
    return v as string[];
  };
  const ifs = o['interfaces'] as Record<string, unknown> | undefined;
  const ifname = (k: string): string => {
    const v = ifs?.[k];
    if (typeof v !== 'string' || !/^[a-z][a-z0-9_.-]{0,14}$/.test(v))
      fail(`interfaces.${k}`, 'must be a Linux interface name (max 15 characters)');
    return v;
  };
  return Object.freeze({
    board: s('board', /^[a-z0-9-]+$/),
    boardName: s('boardName', /^[a-z0-9-]+,[a-z0-9-]+$/),
    target: s('target', /^[a-z0-9]+\/[a-z0-9]+$/),
    profile: s('profile', /^[a-z0-9_-]+$/),
    packageArch: s('packageArch', /^[a-z0-9_]+$/),
    kernelPartsizeMib: mib('kernelPartsizeMib', 8, 256),
    rootfsPartsizeMib: mib('rootfsPartsizeMib', 1, 8192),
    packages: Object.freeze(list('packages', /^-?[a-z0-9][a-z0-9._+-]*$/)),
    disabledServices: Object.freeze(list('disabledServices', /^[a-z0-9_-]+$/)),
    interfaces: Object.freeze({ lan: ifname('lan'), wan: ifname('wan'), tap: ifname('tap'), bridge: ifname('bridge') }),
    runtimeDir: s('runtimeDir', /^\/[a-z0-9/_-]+$/),
    agentPath: s('agentPath', /^\/[a-z0-9/_-]+$/),
  });
}
