#!/usr/bin/env bash
# The project's test command (README, CI). Sets up what it needs, then runs every test:
#   1. Debian packages the tests use (scripts/setup-host.sh, idempotent)
#   2. npm dependencies (npm ci when package-lock.json changed since the last install), addon and dist build
#   3. strict type check of everything (tsc --noEmit), lint (eslint: the architecture's walls included) and,
#      once the tree has been formatted (a `.prettier-enforced` file at the root), the format check
#   4. node's test runner over test/**/*.test.ts (or only the paths given as arguments), with a leak check
#      after every integration test file; with CI=true a test that would skip for a missing tool fails
# Tests that need root and network namespaces run too: CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CK_SKIP_SETUP:-}" != 1 ]; then
  bash scripts/setup-host.sh
  stamp=node_modules/.ck-lock-sha256
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "test: installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
  fi
  echo "test: building"
  npm run --silent build
fi

echo "test: type check"
npx tsc --noEmit -p tsconfig.json
echo "test: lint"
npm run --silent lint
# Switched on by the commit that formats the whole tree (it adds .prettier-enforced), so no branch fails on
# formatting it was never asked to do.
if [ -f .prettier-enforced ]; then
  echo "test: format check"
  npm run --silent format:check || { echo "test: the files above are not formatted; run 'npm run format'" >&2; exit 1; }
fi

roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=(test)
mapfile -t files < <(find "${roots[@]}" -name '*.test.ts' -type f | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "test: no test files under ${roots[*]}" >&2
  exit 1
fi
echo "test: running ${#files[@]} test files"
# A test that never settles must fail the run, not hang CI: 10 minutes per test at most. The leak check
# fails an integration test file that leaves a server, socket, child or timer open (test/helpers/leak-check.ts).
exec node --import tsx --import ./test/helpers/leak-check.ts --test --test-timeout=600000 --test-reporter=spec "${files[@]}"
