// SPDX-License-Identifier: UNLICENSED
// The build's own verdicts between steps: the signed checksum list names the ImageBuilder with the hash
// the lock file pins, the host Node can make a SEA blob for the target Node, and the agent binary needs no
// library the glibc runtime does not ship. Pure.
import { ImageError } from './errors.js';
import type { BuildInputs } from './lock.js';
import { parseSha256Sums } from './sha256sums.js';

/** After its signature checked out: the list must name the ImageBuilder with the pinned hash. */
export function checkImageBuilderListed(sumsText: string, b: BuildInputs): void {
  const listed = parseSha256Sums(sumsText).get(b.imagebuilder.file);
  if (!listed) throw new ImageError('not-in-sums', `${b.imagebuilder.file} is not listed in the signed ${b.sums.name}`);
  if (listed !== b.imagebuilder.sha256) {
    throw new ImageError(
      'input-tampered',
      `the signed ${b.sums.name} lists ${b.imagebuilder.file} as ${listed}, the lock file pins ${b.imagebuilder.sha256 ?? '-'}`,
    );
  }
}

/** `node --version` of the host Node against the target's version: the SEA blob format needs both equal. */
export function checkHostNode(hostVersion: string, targetVersion: string): void {
  if (hostVersion !== `v${targetVersion}`) {
    throw new ImageError(
      'sea-failed',
      `host node is ${hostVersion}, target is v${targetVersion}: the SEA blob format needs the same version`,
    );
  }
}

export function checkRuntimeLibs(needed: readonly string[], shipped: readonly string[]): void {
  const lacking = needed.filter((n) => !shipped.includes(n));
  if (lacking.length > 0)
    throw new ImageError('sea-failed', `the agent binary needs ${lacking.join(', ')}, which the glibc runtime does not ship`);
}
