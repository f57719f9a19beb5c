// SPDX-License-Identifier: UNLICENSED
// The EST server's files: its config document, the PEM inputs it names, and the issuance log (JSON
// Lines, one record per certificate issued).
import { appendFileSync, readFileSync } from 'node:fs';
import { ConnectorError } from '../../shared/errors.js';
import type { IssuanceRecord } from '../core/issuer.js';

/** The config document parsed as JSON; validating it is the core's job. */
export function readConfigDocument(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConnectorError('CK_ERR_CONFIG_INVALID', `cannot load ${file}: ${(e as Error).message}`);
  }
}

export function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConnectorError('CK_ERR_EST', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function appendIssuance(file: string, record: IssuanceRecord): void {
  appendFileSync(file, JSON.stringify(record) + '\n', { mode: 0o640 });
}
