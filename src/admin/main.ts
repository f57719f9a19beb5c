// SPDX-License-Identifier: UNLICENSED
// Operator commands on the device registry (`connector registry|tenant|segment|unit ...`), one function
// per subcommand. The registry is a JSON file or a PostgreSQL database (--registry FILE|postgres://...),
// shared with the EST server, the headend and the console; every write is a locked read-modify-write
// (file lock or database transaction) validated by the registry's schema. Nothing runs at import.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { ConnectorError, UsageError } from '../shared/errors.js';
import { openRegistryStore } from '../shared/registry/open.js';
import { PostgresRegistryStore } from '../shared/registry/registry-postgres.js';
import { readRegistryFile } from '../shared/registry/registry-file.js';
import { claimDevice, importAllowlist, revokeDevice, type Registry } from '../shared/registry/registry.js';
import { parseRegistrySource, type RegistrySource, type RegistryStore } from '../shared/registry/source.js';
import { parseAllowlist } from './core/allowlist.js';
import {
  addSegment,
  addTenant,
  allowUnit,
  removeSegment,
  removeTenant,
  segmentTable,
  tenantTable,
  type SegmentInput,
} from '../shared/registry/registry-edit.js';
import { registryJson, registryTable } from './core/registry-table.js';
import { readAllowlistText } from './adapters/allowlist-file.js';
import { refuseExisting, writePkiFiles } from './adapters/pki-files.js';
import { createDcPki, DC_PKI_FILES } from './core/dc-pki.js';

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** --registry FILE|URL, else $CONNECTOR_REGISTRY. */
function registrySource(given: string | undefined): RegistrySource {
  const f = given ?? process.env['CONNECTOR_REGISTRY'];
  if (!f) throw new UsageError('--registry FILE|postgres://... is required (or set CONNECTOR_REGISTRY)');
  const s = parseRegistrySource(f);
  return s.kind === 'file' ? { kind: 'file', path: resolve(s.path) } : s;
}

async function withStore<T>(given: string | undefined, body: (s: RegistryStore) => Promise<T>): Promise<T> {
  const store = await openRegistryStore(registrySource(given));
  try {
    await store.reload();
    return await body(store);
  } finally {
    await store.close();
  }
}

const change = (given: string | undefined, edit: (r: Registry) => Registry): Promise<Registry> => withStore(given, (s) => s.update(edit));
const read = (given: string | undefined): Promise<Registry> => withStore(given, (s) => Promise.resolve(s.current()));

export interface RegistryOption {
  readonly registry?: string | undefined;
}

export async function registryClaim(
  o: RegistryOption & { serial: string; tenant: string; segment?: string | undefined; site?: string | undefined },
): Promise<number> {
  await change(o.registry, (r) => claimDevice(r, o.serial, o.tenant, new Date(), o.segment, o.site));
  out(`claimed ${o.serial} for tenant ${o.tenant}`);
  return 0;
}

export async function registryRevoke(o: RegistryOption & { serial: string }): Promise<number> {
  await change(o.registry, (r) => revokeDevice(r, o.serial, new Date()));
  out(`revoked ${o.serial}: renewal refused, headend denies it`);
  return 0;
}

export async function registryList(o: RegistryOption & { json: boolean }): Promise<number> {
  const reg = await read(o.registry);
  if (o.json) out(registryJson(reg));
  else for (const l of registryTable(reg)) out(l);
  return 0;
}

export async function registryImport(o: RegistryOption & { files: readonly string[] }): Promise<number> {
  const entries = o.files.flatMap((f) => parseAllowlist(readAllowlistText(f), f));
  let before = 0;
  const next = await change(o.registry, (r) => {
    before = Object.keys(r.devices).length;
    return importAllowlist(r, entries, new Date());
  });
  out(`imported ${entries.length} entries, ${Object.keys(next.devices).length - before} new serials`);
  return 0;
}

export async function unitAllow(
  o: RegistryOption & { serial: string; batch?: string | undefined; fingerprint?: string | undefined },
): Promise<number> {
  await change(o.registry, (r) =>
    allowUnit(r, o.serial, new Date(), {
      ...(o.batch ? { batch: o.batch } : {}),
      ...(o.fingerprint ? { idevidFingerprint: o.fingerprint } : {}),
    }),
  );
  out(`allowed ${o.serial}: it may enroll once claimed`);
  return 0;
}

export async function tenantAdd(o: RegistryOption & { name: string }): Promise<number> {
  await change(o.registry, (r) => addTenant(r, o.name));
  out(`added tenant ${o.name}`);
  return 0;
}

export async function tenantRemove(o: RegistryOption & { name: string }): Promise<number> {
  await change(o.registry, (r) => removeTenant(r, o.name));
  out(`removed tenant ${o.name}`);
  return 0;
}

export async function tenantList(o: RegistryOption & { json: boolean }): Promise<number> {
  const reg = await read(o.registry);
  if (o.json) out(JSON.stringify(reg.tenants, null, 2));
  else for (const l of tenantTable(reg)) out(l);
  return 0;
}

export async function segmentAdd(
  o: RegistryOption & { tenant: string; name: string; replace: boolean; segment: SegmentInput },
): Promise<number> {
  const next = await change(o.registry, (r) => addSegment(r, o.tenant, o.name, o.segment, o.replace));
  const s = next.tenants[o.tenant]?.segments[o.name];
  out(
    `${o.replace ? 'set' : 'added'} segment ${o.tenant}/${o.name}: VNI ${s?.vni}, path MTU ${s?.vtepPathMtu}, VTEPs ${s?.vteps.join(',') || 'none'}`,
  );
  if (s && s.vtepPathMtu < 1550) out(`warning: path MTU ${s.vtepPathMtu} < 1550 cannot carry 1514-byte frames in VXLAN over IPv4`);
  return 0;
}

export async function segmentRemove(o: RegistryOption & { tenant: string; name: string }): Promise<number> {
  await change(o.registry, (r) => removeSegment(r, o.tenant, o.name));
  out(`removed segment ${o.tenant}/${o.name}`);
  return 0;
}

export async function segmentList(o: RegistryOption & { tenant?: string | undefined; json: boolean }): Promise<number> {
  const reg = await read(o.registry);
  if (o.json) {
    const pick = o.tenant === undefined ? reg.tenants : { [o.tenant]: segmentTable(reg, o.tenant) && reg.tenants[o.tenant] };
    out(JSON.stringify(Object.fromEntries(Object.entries(pick).map(([t, v]) => [t, v?.segments ?? {}])), null, 2));
  } else for (const l of segmentTable(reg, o.tenant)) out(l);
  return 0;
}

/** JSON with object keys sorted: the database (jsonb) does not keep the file's key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
}

/**
 * `connector registry migrate --from FILE --to postgres://...`: copies the file's registry into the
 * database. Running it again with the same file changes nothing; a database holding something else is
 * refused unless --force, which replaces its content.
 */
export async function registryMigrate(o: { from: string; to: string; force: boolean }): Promise<number> {
  const to = parseRegistrySource(o.to);
  if (to.kind !== 'postgres') throw new UsageError('--to must be a postgres:// URL');
  const reg = readRegistryFile(resolve(o.from));
  const db = await PostgresRegistryStore.open(to.url);
  try {
    await db.update((cur) => {
      const empty = Object.keys(cur.tenants).length === 0 && Object.keys(cur.devices).length === 0 && cur.denylist.length === 0;
      if (!empty && !o.force && canonical(cur) !== canonical(reg)) {
        throw new ConnectorError(
          'CK_ERR_REGISTRY_DB',
          `the database already holds a registry (${Object.keys(cur.tenants).length} tenants, ${Object.keys(cur.devices).length} units) that differs from ${o.from}: add --force to replace it`,
        );
      }
      return reg;
    });
    out(
      `migrated ${o.from} -> ${o.to.replace(/:[^:@/]*@/, ':***@')}: ${Object.keys(reg.tenants).length} tenants, ${Object.keys(reg.devices).length} units, revision ${db.revision}`,
    );
  } finally {
    await db.close();
  }
  return 0;
}

/** The server certificates' subjectAltNames: at least one, each a DNS name or an IP address. */
function checkNames(what: string, s: { dns: readonly string[]; ips: readonly string[] }): void {
  if (s.dns.length + s.ips.length === 0) {
    throw new ConnectorError(
      'CK_ERR_DC_PKI',
      `the ${what} certificate needs at least one name the units dial (--${what}-dns or --${what}-ip)`,
    );
  }
  for (const ip of s.ips) if (isIP(ip) === 0) throw new ConnectorError('CK_ERR_DC_PKI', `--${what}-ip "${ip}" is not an IP address`);
  for (const d of s.dns) {
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(d) || isIP(d) !== 0) {
      throw new ConnectorError('CK_ERR_DC_PKI', `--${what}-dns "${d}" is not a DNS name${isIP(d) ? ` (use --${what}-ip)` : ''}`);
    }
  }
}

/** `connector dc init DIR`: the datacentre's CAs and server certificates (docs/operator-quickstart.md). */
export async function dcInit(o: {
  dir: string;
  org: string;
  headend: { dns: string[]; ips: string[] };
  est: { dns: string[]; ips: string[] };
  force: boolean;
}): Promise<number> {
  const dir = resolve(o.dir);
  // Checked before the keys are made, so a refusal costs nothing; writePkiFiles checks again.
  checkNames('headend', o.headend);
  checkNames('est', o.est);
  if (!o.force) refuseExisting(dir, DC_PKI_FILES);
  const files = await createDcPki({ org: o.org, headend: o.headend, est: o.est, now: new Date() });
  writePkiFiles(dir, files, o.force);
  out(`wrote the datacentre PKI to ${dir}:`);
  for (const f of files) out(`  ${f.name.padEnd(20)} ${(f.mode & 0o777).toString(8).padStart(4, '0')}`);
  out('next: put dc-ca.pem in the factory blocks (factory provision --dc-anchor), device-ca.* in the EST server');
  out('config, headend.* and device-ca.pem in the headend config (docs/operator-quickstart.md)');
  return 0;
}
