// SPDX-License-Identifier: UNLICENSED
// Thin wrapper over node:util parseArgs that turns its errors into UsageError and adds --help.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../shared/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  help: boolean;
}

export function parseCommandArgs(argv: string[], options: Options, allowPositionals = true): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals,
      strict: true,
    });
    return { values, positionals, help: values['help'] === true };
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

export function str(p: Parsed, key: string): string | undefined {
  const v = p.values[key];
  return typeof v === 'string' ? v : undefined;
}

export function requireStr(p: Parsed, key: string): string {
  const v = str(p, key);
  if (v === undefined || v === '') throw new UsageError(`--${key} is required`);
  return v;
}

export function flag(p: Parsed, key: string): boolean {
  return p.values[key] === true;
}
