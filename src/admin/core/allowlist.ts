// SPDX-License-Identifier: UNLICENSED
// A factory allowlist as `connector registry import` reads it: JSON Lines (<batch>.allowlist.jsonl or
// <batch>.jsonl from the station) or one JSON array. Pure: text in, entries out.
import { ConnectorError } from '../../shared/errors.js';

export interface AllowlistEntry {
  serial: string;
  batch?: string;
  idevidFingerprint?: string;
}

/** JSON Lines or a JSON array of {serial, batch?, idevidFingerprint?}; other fields are ignored. */
export function parseAllowlist(text: string, file: string): AllowlistEntry[] {
  const trimmed = text.trim();
  let items: unknown[];
  try {
    items = trimmed.startsWith('[')
      ? (JSON.parse(trimmed) as unknown[])
      : trimmed
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as unknown);
  } catch (e) {
    throw new ConnectorError('CK_ERR_REGISTRY', `${file}: not JSON Lines or a JSON array: ${(e as Error).message}`);
  }
  return items.map((it, i) => {
    const o = it as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o['serial'] !== 'string') {
      throw new ConnectorError('CK_ERR_REGISTRY', `${file} entry ${i + 1}: needs a "serial" string`);
    }
    return {
      serial: o['serial'],
      ...(typeof o['batch'] === 'string' ? { batch: o['batch'] } : {}),
      ...(typeof o['idevidFingerprint'] === 'string' ? { idevidFingerprint: o['idevidFingerprint'] } : {}),
    };
  });
}
