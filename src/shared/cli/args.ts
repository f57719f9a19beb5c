// SPDX-License-Identifier: UNLICENSED
// Thin wrapper over node:util parseArgs that turns its errors into UsageError and adds --help.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

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

function unknownSubcommand(command: string, sub: string, names: readonly string[]): UsageError {
  return new UsageError(`unknown ${command} subcommand "${sub}"; use ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`);
}

/**
 * `connector <command> <sub> [options]` where each subcommand parses its own options: HELP for
 * help/--help (exit 0) or a missing subcommand (exit 2), a usage error naming the known ones otherwise.
 */
export function runArgvSubcommand(
  command: string,
  argv: readonly string[],
  help: string,
  handlers: Readonly<Record<string, (rest: string[]) => Promise<number> | number>>,
): Promise<number> | number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(help.endsWith('\n') ? help : help + '\n');
    return sub === undefined ? 2 : 0;
  }
  const handler = Object.hasOwn(handlers, sub) ? handlers[sub] : undefined;
  if (!handler) throw unknownSubcommand(command, sub, Object.keys(handlers));
  return handler(rest);
}

/**
 * `connector <command> <sub> [options]` with every option parsed up front: prints HELP for --help or a
 * missing subcommand, refuses extra positionals and unknown subcommands, and runs the handler.
 */
export function runSubcommand(
  command: string,
  p: Parsed,
  help: string,
  handlers: Readonly<Record<string, (p: Parsed) => Promise<number> | number>>,
): Promise<number> | number {
  const [sub, ...extra] = p.positionals;
  if (p.help || sub === undefined) {
    process.stdout.write(help);
    return p.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const handler = Object.hasOwn(handlers, sub) ? handlers[sub] : undefined;
  if (!handler) throw unknownSubcommand(command, sub, Object.keys(handlers));
  return handler(p);
}
