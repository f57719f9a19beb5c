// SPDX-License-Identifier: UNLICENSED
// `connector registry claim | revoke | list | import | migrate`: admin of the device registry that the
// EST server and the headend both read. Parses the command line; src/admin/main.ts does the work.
import { UsageError } from '../../shared/errors.js';
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { registryClaim, registryImport, registryList, registryMigrate, registryRevoke } from '../../admin/main.js';

const HELP = `usage: connector registry <claim|revoke|list|import|migrate> --registry FILE|URL [options]

  claim   --serial S --tenant T [--segment NAME] [--site NAME]   bind a unit to a tenant (enrollment proceeds)
  revoke  --serial S                                        refuse renewal and deny at the headend
  list    [--json]                                          serials, states, tenants
  import  FILE...                                           add factory allowlist serials as 'allowed'
                                                            (<batch>.allowlist.jsonl or <batch>.jsonl)
  migrate --from FILE --to postgres://... [--force]         copy a file registry into PostgreSQL (again: no
                                                            change; a database holding another registry
                                                            is refused without --force)

--registry is a JSON file or a postgres:// URL; it defaults to $CONNECTOR_REGISTRY.
Tenants, segments and single units: connector tenant | segment | unit (docs/operator-quickstart.md).`;

const COMMON = { registry: { type: 'string' as const } };

function claim(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    { ...COMMON, serial: { type: 'string' }, tenant: { type: 'string' }, segment: { type: 'string' }, site: { type: 'string' } },
    false,
  );
  const serial = requireStr(p, 'serial');
  const tenant = requireStr(p, 'tenant');
  return registryClaim({ registry: str(p, 'registry'), serial, tenant, segment: str(p, 'segment'), site: str(p, 'site') });
}

function revoke(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, serial: { type: 'string' } }, false);
  return registryRevoke({ registry: str(p, 'registry'), serial: requireStr(p, 'serial') });
}

function list(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, json: { type: 'boolean' } }, false);
  return registryList({ registry: str(p, 'registry'), json: flag(p, 'json') });
}

function importAllowlists(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, COMMON, true);
  if (p.positionals.length === 0) throw new UsageError('import needs at least one allowlist FILE');
  return registryImport({ registry: str(p, 'registry'), files: p.positionals });
}

function migrate(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { from: { type: 'string' }, to: { type: 'string' }, force: { type: 'boolean' } }, false);
  return registryMigrate({ from: requireStr(p, 'from'), to: requireStr(p, 'to'), force: flag(p, 'force') });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('registry', argv, HELP, { claim, revoke, list, import: importAllowlists, migrate });
}
