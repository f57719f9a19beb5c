// SPDX-License-Identifier: UNLICENSED
// Operator commands on the device registry (`connector registry ...`), one function per subcommand. The
// registry file is shared with the EST server and the headend; writes are atomic and locked
// (src/shared/registry/registry-file.ts). Nothing runs at import.
import { resolve } from 'node:path';
import { UsageError } from '../shared/errors.js';
import { readRegistryFile, updateRegistryFile } from '../shared/registry/registry-file.js';
import { claimDevice, importAllowlist, revokeDevice } from '../shared/registry/registry.js';
import { parseAllowlist } from './core/allowlist.js';
import { registryJson, registryTable } from './core/registry-table.js';
import { readAllowlistText } from './adapters/allowlist-file.js';

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** --registry FILE, else $CONNECTOR_REGISTRY. */
function registryPath(given: string | undefined): string {
  const f = given ?? process.env['CONNECTOR_REGISTRY'];
  if (!f) throw new UsageError('--registry FILE is required (or set CONNECTOR_REGISTRY)');
  return resolve(f);
}

export interface RegistryOption {
  readonly registry?: string | undefined;
}

export async function registryClaim(
  o: RegistryOption & { serial: string; tenant: string; segment?: string | undefined; site?: string | undefined },
): Promise<number> {
  await updateRegistryFile(registryPath(o.registry), (r) => claimDevice(r, o.serial, o.tenant, new Date(), o.segment, o.site));
  out(`claimed ${o.serial} for tenant ${o.tenant}`);
  return 0;
}

export async function registryRevoke(o: RegistryOption & { serial: string }): Promise<number> {
  await updateRegistryFile(registryPath(o.registry), (r) => revokeDevice(r, o.serial, new Date()));
  out(`revoked ${o.serial}: renewal refused, headend denies it`);
  return 0;
}

export function registryList(o: RegistryOption & { json: boolean }): number {
  const reg = readRegistryFile(registryPath(o.registry));
  if (o.json) out(registryJson(reg));
  else for (const l of registryTable(reg)) out(l);
  return 0;
}

export async function registryImport(o: RegistryOption & { files: readonly string[] }): Promise<number> {
  const entries = o.files.flatMap((f) => parseAllowlist(readAllowlistText(f), f));
  const file = registryPath(o.registry);
  const before = Object.keys(readRegistryFile(file).devices).length;
  const next = await updateRegistryFile(file, (r) => importAllowlist(r, entries, new Date()));
  out(`imported ${entries.length} entries, ${Object.keys(next.devices).length - before} new serials`);
  return 0;
}
