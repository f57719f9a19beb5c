// SPDX-License-Identifier: UNLICENSED
// TLS 1.3 session-ticket keys shared by the headends (`tls.ticketKeysFile`): a ticket one headend issued
// resumes on another, and on the same one after a restart, so a reconnecting fleet skips the certificate
// signature and chain verification. The file is lines of 96 hex digits (48 bytes: 16 key name, 16 HMAC
// key, 16 AES key); the first line encrypts new tickets, the later ones (the previous keys of a rotation)
// still decrypt. Blank lines and `#` comments are ignored. Pure: text in, keys out.
import { ConfigError } from '../../shared/errors.js';

export interface TicketKey {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

/** At most this many keys: current plus a few previous is all a rotation needs. */
export const MAX_TICKET_KEYS = 4;

export function parseTicketKeys(text: string, file: string): TicketKey[] {
  const keys: TicketKey[] = [];
  const names = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!/^[0-9a-fA-F]{96}$/.test(line)) throw new ConfigError(`${file}:${i + 1}`, 'a ticket key is 96 hex digits (48 bytes)');
    const b = Buffer.from(line, 'hex');
    const k = { name: b.subarray(0, 16), hmac: b.subarray(16, 32), aes: b.subarray(32, 48) };
    if (names.has(k.name.toString('hex'))) throw new ConfigError(`${file}:${i + 1}`, 'two ticket keys with the same name (first 16 bytes)');
    names.add(k.name.toString('hex'));
    keys.push(k);
  });
  if (keys.length === 0) throw new ConfigError(file, 'no ticket key (the first line is the current key)');
  if (keys.length > MAX_TICKET_KEYS) throw new ConfigError(file, `at most ${MAX_TICKET_KEYS} ticket keys (current and previous)`);
  return keys;
}

/** 1: a ticket of the current key; 2: of a previous key (resume, then issue a fresh ticket); 0: unknown. */
export type TicketLookup = { code: 0 | 1 | 2; key: TicketKey };

/** Which key decrypts a ticket named `name`; an unknown name means a full handshake, never a failure. */
export function ticketKeyFor(keys: readonly TicketKey[], name: Uint8Array): TicketLookup {
  const i = keys.findIndex((k) => k.name.equals(name));
  const current = keys[0] as TicketKey;
  if (i < 0) return { code: 0, key: current };
  return { code: i === 0 ? 1 : 2, key: keys[i] as TicketKey };
}
