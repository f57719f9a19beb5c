// SPDX-License-Identifier: UNLICENSED
// Reads the headend's audit log (JSON lines) for the session records a failover decision needs. A line
// that is not JSON (a write cut off by a crash) is skipped: `connector audit verify` is where it is judged.
import { readFileSync } from 'node:fs';
import { ConnectorError, errorMessage } from '../../shared/errors.js';
import type { SessionRecord } from '../core/failover.js';

export function readSessionRecords(path: string): SessionRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_DRILL', `cannot read the headend audit log ${path}: ${errorMessage(e)}`, { cause: e });
  }
  const out: SessionRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as SessionRecord);
    } catch {
      // cut-off tail
    }
  }
  return out;
}
