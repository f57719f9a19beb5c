// SPDX-License-Identifier: UNLICENSED
// Release versions are dotted numeric (semver core, optional -prerelease compared as text). Pure.

const VERSION_RE = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:-([0-9A-Za-z.-]{1,64}))?$/;

export function isVersion(v: string): boolean {
  return VERSION_RE.test(v);
}

/** Negative if a < b, 0 if equal, positive if a > b. A prerelease sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const ma = VERSION_RE.exec(a);
  const mb = VERSION_RE.exec(b);
  if (!ma || !mb) throw new RangeError(`not a version: ${!ma ? a : b}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(ma[i]) - Number(mb[i]);
    if (d !== 0) return d;
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === pb) return 0;
  if (pa === undefined) return 1;
  if (pb === undefined) return -1;
  return pa < pb ? -1 : 1;
}
