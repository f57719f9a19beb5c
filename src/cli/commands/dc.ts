// SPDX-License-Identifier: UNLICENSED
// `connector dc init DIR`: the datacentre's PKI in one step (src/admin/core/dc-pki.ts says what and why).
import { flag, parseCommandArgs, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { dcInit } from '../../admin/main.js';

const HELP = `usage: connector dc init DIR --headend-dns NAME|--headend-ip IP ... --est-dns NAME|--est-ip IP ... [--org NAME] [--force]

  init DIR   creates the datacentre PKI, EC P-256 throughout:
               dc-ca.pem, dc-ca.key.pem            DC CA: the trust anchor in every factory block; signs the servers
               device-ca.pem, device-ca.key.pem    device CA: signs the units' operational certificates (EST)
               headend.cert.pem, headend.key.pem   headend server certificate (serverAuth), chain with the DC CA
               est.cert.pem, est.key.pem           EST server certificate (serverAuth), chain with the DC CA
             keys are written 0600; an existing PKI is never replaced without --force

  --headend-dns NAME, --headend-ip IP   the names the units dial for the tunnel (repeatable; subjectAltName)
  --est-dns NAME, --est-ip IP           the names the units dial for enrollment (repeatable)
  --org NAME                            O= in every subject (default "connector-kit")`;

function list(p: ReturnType<typeof parseCommandArgs>, key: string): string[] {
  return (p.values[key] as string[] | undefined) ?? [];
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('dc', argv, HELP, {
    init: (rest) => {
      const many = { type: 'string' as const, multiple: true };
      const p = parseCommandArgs(
        rest,
        { 'headend-dns': many, 'headend-ip': many, 'est-dns': many, 'est-ip': many, org: { type: 'string' }, force: { type: 'boolean' } },
        true,
      );
      if (p.positionals.length !== 1) throw new UsageError('init needs one DIR');
      return dcInit({
        dir: p.positionals[0] as string,
        org: str(p, 'org') ?? 'connector-kit',
        headend: { dns: list(p, 'headend-dns'), ips: list(p, 'headend-ip') },
        est: { dns: list(p, 'est-dns'), ips: list(p, 'est-ip') },
        force: flag(p, 'force'),
      });
    },
  });
}
