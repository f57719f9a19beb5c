// SPDX-License-Identifier: UNLICENSED
// `connector audit export|verify`: read the headend's hash-chained session audit log (docs/headend.md).
import { parseCommandArgs, requireStr, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { exportAuditLog, verifyAuditLog } from '../../headend/main.js';

const HELP = `usage: connector audit export --format csv|jsonl --log FILE
       connector audit verify --log FILE

export  writes the records to stdout as CSV (RFC 4180, header row) or JSON Lines, each with its own hash
verify  checks the hash chain and the head pointer (FILE.head); exit 0 when intact, 1 with the first
        bad line otherwise
`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { format: { type: 'string' }, log: { type: 'string' } });
  const [sub, ...extra] = p.positionals;
  if (p.help || sub === undefined) {
    process.stdout.write(HELP);
    return p.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const log = requireStr(p, 'log');
  if (sub === 'export') {
    const format = str(p, 'format') ?? 'jsonl';
    if (format !== 'csv' && format !== 'jsonl') throw new UsageError(`--format must be csv or jsonl, got "${format}"`);
    process.stdout.write(exportAuditLog(log, format));
    return 0;
  }
  if (sub === 'verify') {
    const v = verifyAuditLog(log);
    if (v.ok) {
      const tail = v.headChecked ? 'head pointer matches' : `no head pointer (${log}.head): a removed tail cannot be detected`;
      process.stdout.write(`ok: ${v.lines} lines, chain intact, ${tail}, last hash ${v.head.hash}\n`);
      return 0;
    }
    process.stdout.write(`FAILED at line ${v.line}: ${v.problem}\n`);
    return 1;
  }
  throw new UsageError(`unknown audit subcommand "${sub}"; use export or verify`);
}
