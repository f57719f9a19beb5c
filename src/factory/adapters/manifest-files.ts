// SPDX-License-Identifier: UNLICENSED
// Appends one unit to the batch's manifest files (CSV with a header on first use, JSON Lines, allowlist).
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import {
  allowlistLine,
  csvHeader,
  csvLine,
  jsonLine,
  manifestFiles,
  type ManifestFiles,
  type ManifestRecord,
} from '../core/batch-manifest.js';

export function appendManifest(dir: string, r: ManifestRecord): ManifestFiles {
  mkdirSync(dir, { recursive: true });
  const f = manifestFiles(dir, r.batch);
  if (!existsSync(f.csv)) appendFileSync(f.csv, csvHeader());
  appendFileSync(f.csv, csvLine(r));
  appendFileSync(f.jsonl, jsonLine(r));
  appendFileSync(f.allowlist, allowlistLine(r));
  return f;
}
