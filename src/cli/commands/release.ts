// SPDX-License-Identifier: UNLICENSED
// `connector release keygen|manifest|sign|verify`: Ed25519 release keys and signatures in the
// usign/signify format over a JSON release manifest (docs/ota.md). Parses the command line;
// src/ota/main.ts does the work.
import { parseCommandArgs, requireStr, str, runSubcommand, type Parsed } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import type { ArtifactKind } from '../../shared/ota/manifest.js';
import { releaseKeygen, releaseManifest, releaseSign, releaseVerify } from '../../ota/main.js';

const HELP = `usage: connector release keygen --out PREFIX [--comment TEXT]
       connector release manifest --version V --board BOARD --artifact KIND=FILE=URL[,URL...] [--artifact ...]
                                  [--min-version V] [--os-compat-version X.Y] [--notes TEXT] --out FILE
       connector release sign --key KEY.sec --manifest FILE [--out FILE.sig]
       connector release verify --pub KEY.pub [--pub KEY2.pub] --manifest FILE [--sig FILE.sig]

keygen    writes PREFIX.pub and PREFIX.sec (mode 0600, no passphrase; usable by signify -S and usign -S);
          never overwrites; prints the key id
manifest  computes sha256 and size of each artifact (KIND is agent or sysupgrade) and writes the manifest
sign      validates the manifest, then writes a usign/signify signature (default FILE.sig)
verify    checks the signature with any of the given public keys (key rotation) and validates the manifest;
          exit 0 when good, 1 otherwise
`;

function list(p: Parsed, key: string): string[] {
  const v = p.values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

function artifactSpec(spec: string): { kind: ArtifactKind; file: string; urls: string[] } {
  const [kind, file, urls, ...rest] = spec.split('=');
  if (!kind || !file || !urls || rest.length > 0) throw new UsageError(`--artifact "${spec}": expected KIND=FILE=URL[,URL...]`);
  if (kind !== 'agent' && kind !== 'sysupgrade') throw new UsageError(`--artifact "${spec}": KIND must be agent or sysupgrade`);
  return { kind, file, urls: urls.split(',') };
}

function keygen(p: Parsed): Promise<number> {
  return releaseKeygen({ out: requireStr(p, 'out'), comment: str(p, 'comment') });
}

function manifest(p: Parsed): Promise<number> {
  const out = requireStr(p, 'out');
  const specs = list(p, 'artifact');
  if (specs.length === 0) throw new UsageError('--artifact KIND=FILE=URL is required at least once');
  const artifacts = specs.map(artifactSpec);
  return releaseManifest({
    out,
    version: requireStr(p, 'version'),
    board: requireStr(p, 'board'),
    artifacts,
    minVersion: str(p, 'min-version'),
    osCompatVersion: str(p, 'os-compat-version'),
    notes: str(p, 'notes'),
  });
}

function sign(p: Parsed): Promise<number> {
  return releaseSign({ manifest: requireStr(p, 'manifest'), key: requireStr(p, 'key'), out: str(p, 'out') });
}

function verify(p: Parsed): Promise<number> {
  const manifest = requireStr(p, 'manifest');
  const pubs = list(p, 'pub');
  if (pubs.length === 0) throw new UsageError('--pub KEY.pub is required (repeat it for each trusted key slot)');
  return releaseVerify({ manifest, pubs, sig: str(p, 'sig') });
}

export async function run(argv: string[]): Promise<number> {
  const p = parseCommandArgs(argv, {
    out: { type: 'string' },
    comment: { type: 'string' },
    key: { type: 'string' },
    manifest: { type: 'string' },
    sig: { type: 'string' },
    pub: { type: 'string', multiple: true },
    version: { type: 'string' },
    board: { type: 'string' },
    artifact: { type: 'string', multiple: true },
    'min-version': { type: 'string' },
    'os-compat-version': { type: 'string' },
    notes: { type: 'string' },
  });
  return runSubcommand('release', p, HELP, { keygen, manifest, sign, verify });
}
