// SPDX-License-Identifier: UNLICENSED
// `connector audit export|verify`: read the headend's hash-chained session audit log (docs/headend.md).
import { parseCommandArgs, requireStr, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { exportAuditLog, verifyAuditLog } from '../../headend/main.js';

const HELP = `usage: connector audit export --format csv|jsonl --log FILE
       connector audit verify --log FILE [--pubkey FILE] [--sink FILE] [--accept-epoch N]...

export  writes the records (rotated files first) to stdout as CSV (RFC 4180, header row; formula-safe) or JSON Lines, each
        with its own hash
verify  checks the hash chain, every signed checkpoint (with the headend's public key: --pubkey, default
        FILE.pub; an auditor passes the copy they keep), the head pointer (FILE.head), and with --sink
        that the log still holds the last checkpoint shipped off the host. An epoch begun on a log
        that was cut or rewritten fails until accepted with --accept-epoch N. Rotated files beside the
        log (FILE.000001, ...) are read with it, oldest first; older ones may be archived away, a
        missing one in the middle fails. Exit 0 when intact, 1 with the first bad line otherwise
`;

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, {
    format: { type: 'string' },
    log: { type: 'string' },
    pubkey: { type: 'string' },
    sink: { type: 'string' },
    'accept-epoch': { type: 'string', multiple: true },
  });
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
    const accept = ((p.values['accept-epoch'] as string[] | undefined) ?? []).map((x) => {
      if (!/^\d+$/.test(x)) throw new UsageError(`--accept-epoch takes an epoch number, not "${x}"`);
      return Number(x);
    });
    const v = verifyAuditLog(log, { pubkeyFile: str(p, 'pubkey'), sinkFile: str(p, 'sink'), acceptEpochs: accept });
    if (v.ok) {
      const tail = v.unsignedTail > 0 ? `; ${v.unsignedTail} records after the last checkpoint are not signed yet` : '';
      const files = v.files > 1 ? ` in ${v.files} files` : '';
      const from = v.startSeq > 0 ? `; begins at seq ${v.startSeq + 1} (older rotated files archived or removed)` : '';
      process.stdout.write(
        `ok: ${v.lines} lines${files}, chain intact, ${v.checkpoints} signed checkpoints, ${v.epochs.length} epochs, head pointer consistent${tail}${from}; last hash ${v.head.hash}\n`,
      );
      return 0;
    }
    process.stdout.write(`FAILED at line ${v.line}: ${v.problem}\n`);
    return 1;
  }
  throw new UsageError(`unknown audit subcommand "${sub}"; use export or verify`);
}
