// SPDX-License-Identifier: UNLICENSED
// The native addon's ones'-complement sum (native/tap/tap.c `inetSum`), checked against TypeScript's
// before anyone relies on it: the TCP coalescers (shared/l2/tcp-coalesce.ts) of the agent, toward the
// LAN, and of the headend, toward sessions, verify every segment's checksum with it.
import { inetSum, type InetSum } from '../l2/tso-segment.js';
import type { Logger } from '../log.js';
import { loadTapAddon, type TapAddon } from './addon.js';

/**
 * The addon's C checksum sum, once it has agreed with TypeScript's on odd and even lengths, offsets and
 * carries; otherwise (an older or broken build) undefined, and the coalescer sums in TypeScript.
 */
export function checkedInetSum(c: InetSum | undefined, log: Logger): InetSum | undefined {
  if (c === undefined) return undefined;
  const bytes = new Uint8Array(1_601);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 151 + 89) & 0xff;
  bytes.fill(0xff, 700, 1_300); // long carries
  const cases: [number, number, number][] = [
    [0, 1_601, 0],
    [1, 1_600, 0x1_2345],
    [3, 4, 0xffff],
    [14, 14, 7],
    [0, 1_601, 2 ** 40],
  ];
  try {
    for (const [from, to, initial] of cases)
      if (c(bytes, from, to, initial) !== inetSum(bytes, from, to, initial)) {
        log.warn('the native addon sums checksums wrongly: summing in TypeScript', { from, to });
        return undefined;
      }
  } catch (e) {
    log.warn('the native addon cannot sum checksums: summing in TypeScript', { error: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
  return c;
}

/** The addon's checked sum, or undefined (no addon, a build without it, a wrong one: sum in TypeScript). */
export function nativeInetSum(log: Logger, load: () => TapAddon = loadTapAddon): InetSum | undefined {
  let addon: TapAddon;
  try {
    addon = load();
  } catch {
    return undefined;
  }
  return checkedInetSum(addon.inetSum?.bind(addon), log);
}
