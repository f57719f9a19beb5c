// SPDX-License-Identifier: UNLICENSED
// Temporary directories for tests: one per test, removed when the test ends, pass or fail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly dir: string;
  path(name: string): string;
  remove(): void;
}

/**
 * A fresh directory under the OS temp dir named `<stem>XXXXXX`, removed after the test. With `manual` the
 * test removes it itself (`remove()`), e.g. after the servers writing into it have closed.
 */
export function tempDir(t: { after(fn: () => void): void }, stem = 'ck-test-', manual = false): TempDir {
  const dir = mkdtempSync(join(tmpdir(), stem));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  if (!manual) t.after(remove);
  return { dir, path: (name) => join(dir, name), remove };
}
