// SPDX-License-Identifier: UNLICENSED
// `connector factory init-ca | provision | read`: the factory station (docs/provisioning.md). Parses the
// command line; src/factory/main.ts does the work.
import { UsageError } from '../../shared/errors.js';
import { FACTORY_BLOCK_OFFSET } from '../../shared/factory-block/factory-block.js';
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { initCa as initFactoryCa, provision as provisionUnit, readBlock } from '../../factory/main.js';

const HELP = `usage: connector factory <init-ca|provision|read> [options]

  init-ca    --dir DIR [--cn NAME] [--years N]
             create the factory CA (P-256): DIR/factory-ca.cert.pem and DIR/factory-ca.key.pem (0600)
  provision  --serial S --target PATH --batch B --ca-dir DIR --est-url URL --dc-anchor FILE
             [--image FILE.img[.gz]] [--station ST] [--hw-rev R] [--mac aa:bb:..]... [--manifest-dir DIR]
             [--offset BYTES] [--force] [--dry-run] [--json]
             write the image (verified by read-back SHA-256), then the factory block, then the manifest
  read       --target PATH [--offset BYTES] [--ca FILE] [--json]
             dump and verify a factory block (the IDevID key is never printed)

  --offset defaults to ${FACTORY_BLOCK_OFFSET} (24 MiB). Exit 0 ok, 1 refused/invalid, 2 usage.`;

function help(): number {
  process.stdout.write(HELP + '\n');
  return 0;
}

function offsetOf(p: ReturnType<typeof parseCommandArgs>): number {
  const s = str(p, 'offset');
  if (s === undefined) return FACTORY_BLOCK_OFFSET;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 512 || n % 512 !== 0)
    throw new UsageError(`--offset must be a positive multiple of 512 bytes, not "${s}"`);
  return n;
}

async function initCa(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, { dir: { type: 'string' }, cn: { type: 'string' }, years: { type: 'string' } }, false);
  if (p.help) return help();
  const years = Number(str(p, 'years') ?? '25');
  if (!Number.isInteger(years) || years < 1 || years > 100) throw new UsageError('--years must be 1..100');
  return initFactoryCa({ dir: requireStr(p, 'dir'), commonName: str(p, 'cn') ?? 'Connector Factory CA', validityYears: years });
}

async function provision(argv: string[]): Promise<number> {
  const p = parseCommandArgs(
    argv,
    {
      serial: { type: 'string' },
      target: { type: 'string' },
      image: { type: 'string' },
      batch: { type: 'string' },
      station: { type: 'string' },
      'hw-rev': { type: 'string' },
      mac: { type: 'string', multiple: true },
      'ca-dir': { type: 'string' },
      'est-url': { type: 'string' },
      'dc-anchor': { type: 'string' },
      'manifest-dir': { type: 'string' },
      offset: { type: 'string' },
      force: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    false,
  );
  if (p.help) return help();
  return provisionUnit({
    serial: requireStr(p, 'serial'),
    target: requireStr(p, 'target'),
    image: str(p, 'image'),
    batch: requireStr(p, 'batch'),
    station: str(p, 'station'),
    hwRev: str(p, 'hw-rev') ?? '1.0',
    macs: (p.values['mac'] as string[] | undefined) ?? [],
    caDir: requireStr(p, 'ca-dir'),
    estUrl: requireStr(p, 'est-url'),
    dcAnchor: requireStr(p, 'dc-anchor'),
    manifestDir: str(p, 'manifest-dir') ?? '.',
    offset: offsetOf(p),
    force: flag(p, 'force'),
    dryRun: flag(p, 'dry-run'),
    json: flag(p, 'json'),
  });
}

async function read(argv: string[]): Promise<number> {
  const p = parseCommandArgs(
    argv,
    { target: { type: 'string' }, offset: { type: 'string' }, ca: { type: 'string' }, json: { type: 'boolean' } },
    false,
  );
  if (p.help) return help();
  return readBlock({ target: requireStr(p, 'target'), offset: offsetOf(p), ca: str(p, 'ca'), json: flag(p, 'json') });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('factory', argv, HELP, { 'init-ca': initCa, provision, read });
}
