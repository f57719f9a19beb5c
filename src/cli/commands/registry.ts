// SPDX-License-Identifier: UNLICENSED
// `connector registry claim | revoke | list | import`: admin of the device registry that the EST server
// and the headend both read. Writes are atomic and locked (registry-file.ts).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConnectorError, UsageError } from '../../shared/errors.js';
import { readRegistryFile, updateRegistryFile } from '../../shared/registry/registry-file.js';
import { claimDevice, importAllowlist, revokeDevice } from '../../shared/registry/registry.js';
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';

const HELP = `usage: connector registry <claim|revoke|list|import> --registry FILE [options]

  claim   --serial S --tenant T [--segment NAME] [--site NAME]   bind a unit to a tenant (enrollment proceeds)
  revoke  --serial S                                        refuse renewal and deny at the headend
  list    [--json]                                          serials, states, tenants
  import  FILE...                                           add factory allowlist serials as 'allowed'
                                                            (<batch>.allowlist.jsonl or <batch>.jsonl)

--registry defaults to $CONNECTOR_REGISTRY.`;

function out(line: string): void {
  process.stdout.write(line + '\n');
}

const COMMON = { registry: { type: 'string' as const } };

function registryPath(p: ReturnType<typeof parseCommandArgs>): string {
  const f = str(p, 'registry') ?? process.env['CONNECTOR_REGISTRY'];
  if (!f) throw new UsageError('--registry FILE is required (or set CONNECTOR_REGISTRY)');
  return resolve(f);
}

/** JSON Lines or a JSON array of {serial, batch?, idevidFingerprint?}. */
export function parseAllowlist(text: string, file: string): { serial: string; batch?: string; idevidFingerprint?: string }[] {
  const trimmed = text.trim();
  let items: unknown[];
  try {
    items = trimmed.startsWith('[') ? (JSON.parse(trimmed) as unknown[]) : trimmed.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  } catch (e) {
    throw new ConnectorError('CK_ERR_REGISTRY', `${file}: not JSON Lines or a JSON array: ${(e as Error).message}`);
  }
  return items.map((it, i) => {
    const o = it as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o['serial'] !== 'string') {
      throw new ConnectorError('CK_ERR_REGISTRY', `${file} entry ${i + 1}: needs a "serial" string`);
    }
    return {
      serial: o['serial'],
      ...(typeof o['batch'] === 'string' ? { batch: o['batch'] } : {}),
      ...(typeof o['idevidFingerprint'] === 'string' ? { idevidFingerprint: o['idevidFingerprint'] } : {}),
    };
  });
}

async function claim(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, serial: { type: 'string' }, tenant: { type: 'string' }, segment: { type: 'string' }, site: { type: 'string' } }, false);
  const serial = requireStr(p, 'serial');
  const tenant = requireStr(p, 'tenant');
  await updateRegistryFile(registryPath(p), (r) => claimDevice(r, serial, tenant, new Date(), str(p, 'segment'), str(p, 'site')));
  out(`claimed ${serial} for tenant ${tenant}`);
  return 0;
}

async function revoke(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, serial: { type: 'string' } }, false);
  const serial = requireStr(p, 'serial');
  await updateRegistryFile(registryPath(p), (r) => revokeDevice(r, serial, new Date()));
  out(`revoked ${serial}: renewal refused, headend denies it`);
  return 0;
}

function list(rest: string[]): number {
  const p = parseCommandArgs(rest, { ...COMMON, json: { type: 'boolean' } }, false);
  const reg = readRegistryFile(registryPath(p));
  if (flag(p, 'json')) {
    out(JSON.stringify({ devices: reg.devices, denylist: reg.denylist }, null, 2));
    return 0;
  }
  out('serial                           state     tenant           segment  batch');
  for (const [serial, d] of Object.entries(reg.devices).sort(([a], [b]) => a.localeCompare(b))) {
    out(`${serial.padEnd(32)} ${d.state.padEnd(9)} ${(d.tenant ?? '-').padEnd(16)} ${(d.segment ?? '-').padEnd(8)} ${d.batch ?? '-'}`);
  }
  if (reg.denylist.length) out(`denylist: ${reg.denylist.join(' ')}`);
  return 0;
}

async function importAllowlists(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, COMMON, true);
  if (p.positionals.length === 0) throw new UsageError('import needs at least one allowlist FILE');
  const entries = p.positionals.flatMap((f) => parseAllowlist(readFileSync(f, 'utf8'), f));
  const before = Object.keys(readRegistryFile(registryPath(p)).devices).length;
  const next = await updateRegistryFile(registryPath(p), (r) => importAllowlist(r, entries, new Date()));
  out(`imported ${entries.length} entries, ${Object.keys(next.devices).length - before} new serials`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('registry', argv, HELP, { claim, revoke, list, import: importAllowlists });
}
