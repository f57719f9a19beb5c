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

/** Runs one command of `table`; its errors become exit codes through reportError. */
export async function runCommand(program: string, table: CommandTable, argv: string[], commandDir?: URL): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(program, table) + '\n');
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = table[name];
  if (!entry) {
    process.stderr.write(`${program}: unknown command "${name}"\n\n${usage(program, table)}\n`);
    return EXIT.usage;
  }
  try {
    const load = entry[0];
    if (typeof load === 'string' && !commandDir)
      throw new TypeError(`command "${name}" names a module file but runCommand got no commandDir`);
    const mod = typeof load === 'string' ? ((await import(new URL(load, commandDir).href)) as CommandModule) : await load();
    return await mod.run(rest);
  } catch (e) {
    return reportError(program, e);
  }
}

/**
 * The exit codes of every program of the kit (connector, connector-agent, build-image). This is the only
 * place that maps an error to one; docs/errors.md lists the codes behind 1.
 */
export const EXIT = Object.freeze({
  ok: 0,
  /** A known failure: a ConnectorError, printed with its stable code. */
  failure: 1,
  /** The command line was wrong (UsageError): fix the arguments, see --help. */
  usage: 2,
  /** An error without a code: a bug. The stack is printed; report it (EX_SOFTWARE of sysexits.h). */
  bug: 70,
});

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof ConnectorError) return EXIT.failure;
  return EXIT.bug;
}

/** Prints an error the way its exit code says (the stable code for known failures) and returns that code. */
export function reportError(program: string, e: unknown): number {
  const code = exitCodeFor(e);
  if (e instanceof UsageError) {
    process.stderr.write(`${program}: ${e.message}\n`);
  } else if (e instanceof ConnectorError) {
    process.stderr.write(`${program}: ${e.message} [${e.code}]\n`);
    if (process.env['CONNECTOR_DEBUG'] && e.cause) process.stderr.write(`cause: ${errorMessage(e.cause)}\n`);
  } else {
    process.stderr.write(`${program}: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  return code;
}

/** A program's entry: runs `main` and sets the process exit code from its result or its error. */
export function runProgram(program: string, main: () => Promise<number>): Promise<void> {
  return main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.exitCode = reportError(program, e);
    },
  );
}
