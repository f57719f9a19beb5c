// SPDX-License-Identifier: UNLICENSED
// The console's record of operator actions: JSON Lines, one per change (who, what, on which unit or
// tenant, from where), each line carrying the SHA-256 of the line before it, so a removed or edited
// line breaks the chain. Appended synchronously: changes are rare and must be on disk before the
// operator is told they happened.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface OperatorAction {
  operator: string;
  action: string;
  target: string;
  remote: string;
  detail?: Record<string, unknown>;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export class OperatorLog {
  readonly #file: string;
  #prev: string;

  constructor(file: string) {
    this.#file = file;
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    this.#prev = lines.length > 0 ? sha256(lines[lines.length - 1] as string) : '0'.repeat(64);
  }

  append(a: OperatorAction, now: Date): void {
    const line = JSON.stringify({ ts: now.toISOString(), ...a, prev: this.#prev });
    appendFileSync(this.#file, line + '\n', { mode: 0o600 });
    this.#prev = sha256(line);
  }

  /** The records, newest last. */
  read(): Record<string, unknown>[] {
    if (!existsSync(this.#file)) return [];
    return readFileSync(this.#file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Checks the chain: the index of the first line whose `prev` does not match, or null when intact. */
  verify(): { ok: boolean; lines: number; brokenAt: number | null } {
    const lines = existsSync(this.#file) ? readFileSync(this.#file, 'utf8').split('\n').filter(Boolean) : [];
    let prev = '0'.repeat(64);
    for (let i = 0; i < lines.length; i++) {
      let rec: { prev?: unknown };
      try {
        rec = JSON.parse(lines[i] as string) as { prev?: unknown };
      } catch {
        return { ok: false, lines: lines.length, brokenAt: i + 1 };
      }
      if (rec.prev !== prev) return { ok: false, lines: lines.length, brokenAt: i + 1 };
      prev = sha256(lines[i] as string);
    }
    return { ok: true, lines: lines.length, brokenAt: null };
  }
}
