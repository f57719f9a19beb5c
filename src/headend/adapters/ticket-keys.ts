// SPDX-License-Identifier: UNLICENSED
// Puts the shared ticket keys (core/ticket-keys.ts) into the TLS server, and re-reads the file when it
// changes (a rotation writes the new key first and keeps the old one as the second line). Node exposes
// one ticket key (`setTicketKeys`); accepting the previous keys of a rotation needs the ticket-key
// callback OpenSSL offers, which Node wires internally (`enableTicketKeyCallback`, as in Node's own tests
// of ticket renewal). Where that is missing, the current key alone is set: tickets of the previous key
// then cost a full handshake, nothing worse.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import { ConfigError, errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { parseTicketKeys, ticketKeyFor, type TicketKey } from '../core/ticket-keys.js';

interface NativeContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, enc: boolean) => [number, Buffer, Buffer, Buffer?, Buffer?];
}

function readKeys(file: string): TicketKey[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, `cannot be read: ${errorMessage(e)}`, { cause: e });
  }
  return parseTicketKeys(text, file);
}

export interface TicketKeysHandle {
  /** How tickets from other keys are handled: 'callback' (previous keys accepted) or 'single'. */
  readonly mode: 'callback' | 'single';
  stop(): void;
}

/** Installs the keys of `file` in `server` (throws a ConfigError for a bad file) and polls it for rotations. */
export function installTicketKeys(server: TlsServer, file: string, pollMs: number, log: Logger): TicketKeysHandle {
  let keys = readKeys(file);
  const ctx = (server as unknown as { _sharedCreds?: { context?: NativeContext } })._sharedCreds?.context;
  const mode = typeof ctx?.enableTicketKeyCallback === 'function' ? 'callback' : 'single';
  const apply = (): void => {
    const k = keys[0] as TicketKey;
    if (mode === 'single') server.setTicketKeys(Buffer.concat([k.name, k.hmac, k.aes]));
  };
  if (mode === 'callback' && ctx) {
    ctx.enableTicketKeyCallback?.();
    ctx.onticketkeycallback = (name, iv, enc) => {
      if (enc) {
        const k = keys[0] as TicketKey;
        return [1, k.hmac, k.aes, k.name, randomBytes(16)];
      }
      const found = ticketKeyFor(keys, name);
      return [found.code, found.key.hmac, found.key.aes, name, iv];
    };
  }
  apply();
  let mtime = statSync(file).mtimeMs;
  const timer = setInterval(() => {
    try {
      const m = statSync(file).mtimeMs;
      if (m === mtime) return;
      mtime = m;
      keys = readKeys(file);
      apply();
      log.info('ticket keys reloaded', { file, keys: keys.length });
    } catch (e) {
      // Keep the keys in use: a half-written file must not cost every client a full handshake.
      log.error('ticket keys not reloaded', { file, error: errorMessage(e) });
    }
  }, pollMs);
  timer.unref();
  return { mode, stop: () => clearInterval(timer) };
}
