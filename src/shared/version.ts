// SPDX-License-Identifier: UNLICENSED
import { readFileSync } from 'node:fs';

// The image build's esbuild bundle defines this constant; the package.json next to dist/ serves the rest.
declare const __CONNECTOR_VERSION__: string | undefined;

let cached: string | undefined;

export function productVersion(): string {
  if (cached) return cached;
  if (typeof __CONNECTOR_VERSION__ === 'string') return (cached = __CONNECTOR_VERSION__);
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  } catch {
    cached = '0.0.0-unknown';
  }
  return cached;
}
