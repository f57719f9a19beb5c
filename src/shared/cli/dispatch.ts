// SPDX-License-Identifier: UNLICENSED
import { ConnectorError, UsageError, errorMessage } from '../errors.js';

/** A subcommand module exports `run(argv)` and resolves to the process exit code. */
export interface CommandModule {
  run(argv: string[]): Promise<number>;
}
/**
 * name -> [module, summary]. The module is a file name under the command directory, or a loader with a
 * literal import(): bundled programs (the agent's single binary) need the latter so esbuild sees it.
 */
export type CommandTable = Readonly<Record<string, readonly [module: string | (() => Promise<CommandModule>), summary: string]>>;

export function usage(program: string, table: CommandTable): string {
  const width = Math.max(...Object.keys(table).map((n) => n.length));
  const lines = Object.entries(table).map(([n, [, s]]) => `  ${n.padEnd(width)}  ${s}`);
  return `usage: ${program} <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun '${program} <command> --help' for the options of one command.`;
}

/** Maps errors to exit codes at exactly one edge: usage 2, known failures 1 with their code. */
export async function runCommand(
  program: string,
  table: CommandTable,
  argv: string[],
  commandDir?: URL,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(program, table) + '\n');
    return name === undefined ? 2 : 0;
  }
  const entry = table[name];
  if (!entry) {
    process.stderr.write(`${program}: unknown command "${name}"\n\n${usage(program, table)}\n`);
    return 2;
  }
  try {
    const load = entry[0];
    if (typeof load === 'string' && !commandDir) throw new TypeError(`command "${name}" names a module file but runCommand got no commandDir`);
    const mod = typeof load === 'string' ? ((await import(new URL(load, commandDir).href)) as CommandModule) : await load();
    return await mod.run(rest);
  } catch (e) {
    return reportError(program, e);
  }
}

export function reportError(program: string, e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`${program}: ${e.message}\n`);
    return 2;
  }
  if (e instanceof ConnectorError) {
    process.stderr.write(`${program}: ${e.message} [${e.code}]\n`);
    if (process.env['CONNECTOR_DEBUG'] && e.cause) process.stderr.write(`cause: ${errorMessage(e.cause)}\n`);
    return 1;
  }
  process.stderr.write(`${program}: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}
