// SPDX-License-Identifier: UNLICENSED
// Tests that need a tool (tshark, mosquitto, signify, qemu) or root skip with the reason on a developer's
// machine. Under CI=true (or 1) nothing may skip for that reason: CI installs every tool (scripts/setup-host.sh)
// and runs as root, so a missing one is a broken CI machine and fails the run.
import type { TestContext } from 'node:test';

export const IN_CI = process.env['CI'] === 'true' || process.env['CI'] === '1';

function ciFailure(reason: string): Error {
  return new Error(
    `CI=true and a test would skip: ${reason}. CI must have every tool the tests use and run as root (scripts/setup-host.sh)`,
  );
}

/** For a test's `skip` option: the reason (skip) outside CI, false when nothing is missing; under CI a reason throws. */
export function skipUnlessCi(reason: string | false | undefined): string | false {
  if (!reason) return false;
  if (IN_CI) throw ciFailure(reason);
  return reason;
}

/** Inside a test: skips it with the reason outside CI, fails it under CI. */
export function skipOrFail(t: Pick<TestContext, 'skip'>, reason: string): void {
  if (IN_CI) throw ciFailure(reason);
  t.skip(reason);
}
