// SPDX-License-Identifier: UNLICENSED
// `connector segment add | list | remove`: a tenant's L2 segments (VNI, VTEPs, path MTU, options).
// src/admin/main.ts does the work; the registry's schema checks every value.
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { segmentAdd, segmentList, segmentRemove } from '../../admin/main.js';

const HELP = `usage: connector segment <add|list|remove> [--registry FILE|URL] [options]

  add    --tenant T --name N --vni V [--vtep IP]... [--path-mtu BYTES] [--multi-site] [--dhcp-from-dc] [--replace]
         a segment carried to the tenant's VTEPs as VXLAN VNI V (1-16777215, unique across tenants);
         --path-mtu is the IP MTU towards the VTEPs (default 1550; below 1550 1514-byte frames do not fit);
         --multi-site lets the tenant's sites reach each other; --dhcp-from-dc lets DC DHCP servers answer
         the LAN; --replace changes an existing segment (unset options keep their value)
  list   [--tenant T] [--json]
  remove --tenant T --name N   refused while claimed units use it

--registry is a JSON file or a postgres:// URL; it defaults to $CONNECTOR_REGISTRY.`;

const COMMON = { registry: { type: 'string' as const } };

function int(p: ReturnType<typeof parseCommandArgs>, key: string): number | undefined {
  const v = str(p, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${key} must be a whole number, got "${v}"`);
  return Number(v);
}

function add(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    {
      ...COMMON,
      tenant: { type: 'string' },
      name: { type: 'string' },
      vni: { type: 'string' },
      vtep: { type: 'string', multiple: true },
      'path-mtu': { type: 'string' },
      'multi-site': { type: 'boolean' },
      'dhcp-from-dc': { type: 'boolean' },
      replace: { type: 'boolean' },
    },
    false,
  );
  const vni = int(p, 'vni');
  if (vni === undefined) throw new UsageError('--vni is required');
  const vteps = p.values['vtep'] as string[] | undefined;
  const mtu = int(p, 'path-mtu');
  const replace = flag(p, 'replace');
  return segmentAdd({
    registry: str(p, 'registry'),
    tenant: requireStr(p, 'tenant'),
    name: requireStr(p, 'name'),
    replace,
    segment: {
      vni,
      ...(vteps ? { vteps } : {}),
      ...(mtu !== undefined ? { vtepPathMtu: mtu } : {}),
      // With --replace an absent flag keeps the old value; a new segment gets false.
      ...(flag(p, 'multi-site') || !replace ? { multiSite: flag(p, 'multi-site') } : {}),
      ...(flag(p, 'dhcp-from-dc') || !replace ? { allowDhcpFromDc: flag(p, 'dhcp-from-dc') } : {}),
    },
  });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('segment', argv, HELP, {
    add,
    remove: (rest) => {
      const p = parseCommandArgs(rest, { ...COMMON, tenant: { type: 'string' }, name: { type: 'string' } }, false);
      return segmentRemove({ registry: str(p, 'registry'), tenant: requireStr(p, 'tenant'), name: requireStr(p, 'name') });
    },
    list: (rest) => {
      const p = parseCommandArgs(rest, { ...COMMON, tenant: { type: 'string' }, json: { type: 'boolean' } }, false);
      return segmentList({ registry: str(p, 'registry'), tenant: str(p, 'tenant'), json: flag(p, 'json') });
    },
  });
}
