// SPDX-License-Identifier: UNLICENSED
// `connector tenant add | list | remove`: the registry's tenants. src/admin/main.ts does the work.
import { flag, parseCommandArgs, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { tenantAdd, tenantList, tenantRemove } from '../../admin/main.js';

const HELP = `usage: connector tenant <add|list|remove> [--registry FILE|URL] [options]

  add NAME       a new tenant (lowercase letters, digits, - and _); its segments: connector segment add
  list [--json]  tenants, their segment and claimed-unit counts
  remove NAME    refused while units are claimed for it; its segments go with it

--registry is a JSON file or a postgres:// URL; it defaults to $CONNECTOR_REGISTRY.`;

const COMMON = { registry: { type: 'string' as const } };

function one(rest: string[], what: string): { registry: string | undefined; name: string } {
  const p = parseCommandArgs(rest, COMMON, true);
  if (p.positionals.length !== 1) throw new UsageError(`${what} needs one tenant NAME`);
  return { registry: str(p, 'registry'), name: p.positionals[0] as string };
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('tenant', argv, HELP, {
    add: (rest) => tenantAdd(one(rest, 'add')),
    remove: (rest) => tenantRemove(one(rest, 'remove')),
    list: (rest) => {
      const p = parseCommandArgs(rest, { ...COMMON, json: { type: 'boolean' } }, false);
      return tenantList({ registry: str(p, 'registry'), json: flag(p, 'json') });
    },
  });
}
