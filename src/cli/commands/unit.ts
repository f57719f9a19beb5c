// SPDX-License-Identifier: UNLICENSED
// `connector unit allow | claim | revoke | list`: one Connector's life in the registry. claim, revoke and
// list are `connector registry`'s (the same functions); allow admits one serial without an allowlist file.
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { registryClaim, registryList, registryRevoke, unitAllow } from '../../admin/main.js';

const HELP = `usage: connector unit <allow|claim|revoke|list> [--registry FILE|URL] [options]

  allow  --serial S [--batch B] [--fingerprint SHA256]   the serial may enroll once claimed (a factory batch:
                                                        connector registry import FILE)
  claim  --serial S --tenant T [--segment NAME] [--site NAME]   bind it to a tenant; it enrolls and connects
  revoke --serial S                                     refuse renewal; the headend denies it
  list   [--json]

--registry is a JSON file or a postgres:// URL; it defaults to $CONNECTOR_REGISTRY.`;

const COMMON = { registry: { type: 'string' as const } };

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('unit', argv, HELP, {
    allow: (rest) => {
      const p = parseCommandArgs(
        rest,
        { ...COMMON, serial: { type: 'string' }, batch: { type: 'string' }, fingerprint: { type: 'string' } },
        false,
      );
      return unitAllow({
        registry: str(p, 'registry'),
        serial: requireStr(p, 'serial'),
        batch: str(p, 'batch'),
        fingerprint: str(p, 'fingerprint'),
      });
    },
    claim: (rest) => {
      const p = parseCommandArgs(
        rest,
        { ...COMMON, serial: { type: 'string' }, tenant: { type: 'string' }, segment: { type: 'string' }, site: { type: 'string' } },
        false,
      );
      return registryClaim({
        registry: str(p, 'registry'),
        serial: requireStr(p, 'serial'),
        tenant: requireStr(p, 'tenant'),
        segment: str(p, 'segment'),
        site: str(p, 'site'),
      });
    },
    revoke: (rest) => {
      const p = parseCommandArgs(rest, { ...COMMON, serial: { type: 'string' } }, false);
      return registryRevoke({ registry: str(p, 'registry'), serial: requireStr(p, 'serial') });
    },
    list: (rest) => {
      const p = parseCommandArgs(rest, { ...COMMON, json: { type: 'boolean' } }, false);
      return registryList({ registry: str(p, 'registry'), json: flag(p, 'json') });
    },
  });
}
