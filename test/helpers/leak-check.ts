// SPDX-License-Identifier: UNLICENSED
// Leak check, loaded with --import by scripts/test.sh: after every integration test file, what keeps the
// event loop alive (process.getActiveResourcesInfo()) must be back where it was before the file loaded.
// A server, socket, child process or timer a test left open is reported by type and the file fails: its
// process exits 1 instead of hanging the run on the open handle (wireguard-go's goroutine leak check).
import { after } from 'node:test';

/** How long closing sockets and exiting children get to finish after the last test. */
const GRACE_MS = 5_000;

function counts(types: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of types) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}

/** Resource types above the baseline, with how many more there are. */
export function leakedResources(baseline: readonly string[], now: readonly string[]): string[] {
  const base = counts(baseline);
  return [...counts(now)].filter(([t, n]) => n > (base.get(t) ?? 0)).map(([t, n]) => `${t} x${n - (base.get(t) ?? 0)}`);
}

export function installLeakCheck(file: string): void {
  const baseline = process.getActiveResourcesInfo();
  after(() => {
    // Checked from an unref'd timer rather than in this hook: the file's own `after` hooks (closing its
    // servers) run after this one, and a clean process must be free to exit before the timer fires.
    // Only an open handle keeps the process alive long enough for it to fire.
    setTimeout(() => {
      const leaked = leakedResources(baseline, process.getActiveResourcesInfo());
      if (leaked.length === 0) return;
      process.stderr.write(
        `leak check: ${file} left ${leaked.join(', ')} open ${GRACE_MS} ms after its last test (baseline: ${baseline.join(', ') || 'none'})\n`,
      );
      process.exit(1);
    }, GRACE_MS).unref();
  });
}

// Only in the process that runs one test file (node --test starts one per file), and only for integration
// tests: unit tests open nothing, and lab and interop suites tear down namespaces with their own checks.
const file = process.argv[1] ?? '';
if (process.env['NODE_TEST_CONTEXT']?.startsWith('child') && /[/\\]test[/\\]integration[/\\]/.test(file)) installLeakCheck(file);
