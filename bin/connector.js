#!/usr/bin/env node
// Thin launcher: the compiled program lives in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli/connector.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('connector: not built yet; run `npm install` (or `npm run build`) in the project first\n');
  process.exit(1);
}
await import(entry.href);
