// SPDX-License-Identifier: UNLICENSED
// `connector failover start | end`: full-site failover and the handover back (docs/dr-operations.md).
// Parses the command line; src/dr/main.ts does the work.
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { failoverEnd, failoverStart } from '../../dr/main.js';

const HELP = `usage: connector failover <start|end> --registry FILE --tenant T [--segment S] [options]

  start  --gateway IP[/PREFIX][,MAC] --audit-log FILE --dc-netns NS --dc-bridge BR
         --uplink-netns NS --uplink CIDR,PEER_IP [--down-after-s N] [--force]
         the site is gone (its units' sessions down for --down-after-s, default 60, per the headend's
         audit log): fence its units off the segment, then give the segment the site router's address
         (and MAC) from the datacentre, with NAT egress over the uplink
  end    withdraw the DC gateway, then admit the site's units again (the handover)

--registry defaults to $CONNECTOR_REGISTRY.`;

const COMMON = { registry: { type: 'string' as const }, tenant: { type: 'string' as const }, segment: { type: 'string' as const } };

function start(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    {
      ...COMMON,
      gateway: { type: 'string' },
      'audit-log': { type: 'string' },
      'dc-netns': { type: 'string' },
      'dc-bridge': { type: 'string' },
      'uplink-netns': { type: 'string' },
      uplink: { type: 'string' },
      'down-after-s': { type: 'string' },
      force: { type: 'boolean' },
    },
    false,
  );
  const [uplinkCidr, uplinkPeerIp] = requireStr(p, 'uplink').split(',');
  if (!uplinkCidr || !uplinkPeerIp) throw new UsageError('--uplink must be CIDR,PEER_IP, e.g. 203.0.113.2/24,203.0.113.1');
  const down = Number(str(p, 'down-after-s') ?? '60');
  if (!Number.isInteger(down) || down < 0) throw new UsageError('--down-after-s must be a whole number of seconds');
  return failoverStart({
    registry: str(p, 'registry'),
    tenant: requireStr(p, 'tenant'),
    segment: str(p, 'segment'),
    gateway: requireStr(p, 'gateway'),
    auditLog: requireStr(p, 'audit-log'),
    downAfterS: down,
    force: flag(p, 'force'),
    placement: {
      dcNetns: requireStr(p, 'dc-netns'),
      dcBridge: requireStr(p, 'dc-bridge'),
      uplinkNetns: requireStr(p, 'uplink-netns'),
      uplinkCidr,
      uplinkPeerIp,
    },
  });
}

function end(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, COMMON, false);
  return failoverEnd({ registry: str(p, 'registry'), tenant: requireStr(p, 'tenant'), segment: str(p, 'segment') });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('failover', argv, HELP, { start, end });
}
