// SPDX-License-Identifier: UNLICENSED
// The running OpenWrt's compat_version, which a release's sysupgrade image must match (verify-release.ts).
// OpenWrt keeps it in /etc/config/system, section `system`, option `compat_version`; an image whose
// metadata carries none, and a system section without the option, mean 1.0 (OpenWrt's own default).
import { findSection, parseUci } from '../uci.js';

export const DEFAULT_OS_COMPAT_VERSION = '1.0';

/** compat_version from the text of /etc/config/system; the default when the option is absent or malformed. */
export function osCompatVersionOf(systemConfig: string): string {
  let v: string | undefined;
  try {
    v = findSection(parseUci(systemConfig), 'system')?.options['compat_version'];
  } catch {
    v = undefined; // an unreadable system config: assume the default rather than refuse every OS release
  }
  return v !== undefined && /^\d+\.\d+$/.test(v) ? v : DEFAULT_OS_COMPAT_VERSION;
}
