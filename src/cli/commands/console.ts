// SPDX-License-Identifier: UNLICENSED
// `connector console serve|operator add`: the operator console (docs/console.md). Parses the command
// line; src/console/main.ts does the work.
import { readFileSync } from 'node:fs';
import { parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { addOperator, runConsole } from '../../console/main.js';

const HELP = `usage: connector console <serve|operator> [options]

  serve --config FILE
          the web console and its JSON API over HTTPS (OpenAPI at /api/openapi.json); reads the
          registry, the headends' live sessions (GET /sessions on their metrics listener), the
          headend audit log; writes claims and revocations to the registry and every change to the
          operator log. SIGTERM/SIGINT stop. Config keys: docs/console.md.
  operator add --operators FILE --name NAME --role admin|msp|read-only [--tenant T]...
               [--password-file FILE] [--cert CERT.pem]
          adds or replaces an operator; the password (12 characters or more) is read from
          --password-file or the first line of standard input, and stored as a scrypt hash.
          --cert lets the operator log in with that client certificate (its SHA-256 is stored; the
          console's clientCaFile must have issued it); with --cert and no --password-file, no
          password is read and the operator logs in by certificate only.`;

async function serve(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { config: { type: 'string' } }, false);
  if (p.help) return help();
  return runConsole(requireStr(p, 'config'));
}

async function operator(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'add') throw new UsageError('usage: connector console operator add --operators FILE --name NAME --role ROLE [--tenant T]...');
  const p = parseCommandArgs(
    rest,
    {
      operators: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      'password-file': { type: 'string' },
      cert: { type: 'string' },
    },
    false,
  );
  if (p.help) return help();
  const pwFile = str(p, 'password-file');
  const cert = str(p, 'cert');
  // With a certificate and no password file, standard input is not read: the operator logs in by certificate.
  const password = cert && !pwFile ? '' : (readFileSync(pwFile ?? 0, 'utf8').split('\n')[0] ?? '').trim();
  const tenants = (p.values['tenant'] as string[] | undefined) ?? [];
  return addOperator({
    file: requireStr(p, 'operators'),
    name: requireStr(p, 'name'),
    role: requireStr(p, 'role'),
    tenants,
    password,
    certFile: cert,
  });
}

function help(): number {
  process.stdout.write(HELP + '\n');
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('console', argv, HELP, { serve, operator });
}
