// SPDX-License-Identifier: UNLICENSED
// Reads the allowlist files an operator hands to `connector registry import`.
import { readFileSync } from 'node:fs';
import { ConnectorError } from '../../shared/errors.js';

export function readAllowlistText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_IO', `cannot read allowlist ${file}: ${(e as Error).message}`, { cause: e });
  }
}
