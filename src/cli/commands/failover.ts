// SPDX-License-Identifier: UNLICENSED
// `connector failover start | end`: full-site failover and the handover back (docs/dr-operations.md).
// Parses the command line; src/dr/main.ts does the work.
import { flag, parseCommandArgs, requireStr, runArgvSubcommand, str, type Parsed } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { failoverEnd, failoverStart, failoverWatch } from '../../dr/main.js';
import type { GatewayPlacement } from '../../dr/main.js';

const HELP = `usage: connector failover <start|watch|end> --registry FILE --tenant T [--segment S] [options]

  start  --gateway IP[/PREFIX][,MAC] --audit-log FILE --dc-netns NS --dc-bridge BR
         --uplink-netns NS --uplink CIDR,PEER_IP [--down-after-s N] [--force]
         the site is gone (its units' sessions down for --down-after-s, default 60, per the headend's
         audit log): fence its units off the segment, then give the segment the site router's address
         (and MAC) from the datacentre, with NAT egress over the uplink
  watch  the same options as start, and [--poll-s N] (default 5): the failover policy. Waits until the
         site has been down for --down-after-s, then runs start by itself and exits (run it as a
         service). Failback is never automatic
  end    withdraw the DC gateway, then admit the site's units again (the handover)

--registry defaults to $CONNECTOR_REGISTRY.`;

const COMMON = { registry: { type: 'string' as const }, tenant: { type: 'string' as const }, segment: { type: 'string' as const } };

/** Where a DC gateway goes (a failover's, or a sandbox drill's): shared with `connector drill gateway`. */
export const GATEWAY_OPTIONS = {
  gateway: { type: 'string' as const },
  'dc-netns': { type: 'string' as const },
  'dc-bridge': { type: 'string' as const },
  'uplink-netns': { type: 'string' as const },
  uplink: { type: 'string' as const },
};

export function gatewayPlacementOf(p: Parsed): GatewayPlacement {
  const [uplinkCidr, uplinkPeerIp] = requireStr(p, 'uplink').split(',');
  if (!uplinkCidr || !uplinkPeerIp) throw new UsageError('--uplink must be CIDR,PEER_IP, e.g. 203.0.113.2/24,203.0.113.1');
  return {
    dcNetns: requireStr(p, 'dc-netns'),
    dcBridge: requireStr(p, 'dc-bridge'),
    uplinkNetns: requireStr(p, 'uplink-netns'),
    uplinkCidr,
    uplinkPeerIp,
  };
}

const START_OPTIONS = {
  ...COMMON,
  ...GATEWAY_OPTIONS,
  'audit-log': { type: 'string' as const },
  'down-after-s': { type: 'string' as const },
};

function startArgs(p: Parsed): Parameters<typeof failoverWatch>[0] {
  const down = Number(str(p, 'down-after-s') ?? '60');
  if (!Number.isInteger(down) || down < 0) throw new UsageError('--down-after-s must be a whole number of seconds');
  const poll = Number(str(p, 'poll-s') ?? '5');
  if (!Number.isFinite(poll) || poll < 0.1 || poll > 3600) throw new UsageError('--poll-s must be 0.1..3600 seconds');
  return {
    registry: str(p, 'registry'),
    tenant: requireStr(p, 'tenant'),
    segment: str(p, 'segment'),
    gateway: requireStr(p, 'gateway'),
    auditLog: requireStr(p, 'audit-log'),
    downAfterS: down,
    pollS: poll,
    placement: gatewayPlacementOf(p),
  };
}

function start(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...START_OPTIONS, force: { type: 'boolean' } }, false);
  return failoverStart({ ...startArgs(p), force: flag(p, 'force') });
}

function watch(rest: string[]): Promise<number> {
  return failoverWatch(startArgs(parseCommandArgs(rest, { ...START_OPTIONS, 'poll-s': { type: 'string' } }, false)));
}

function end(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, COMMON, false);
  return failoverEnd({ registry: str(p, 'registry'), tenant: requireStr(p, 'tenant'), segment: str(p, 'segment') });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('failover', argv, HELP, { start, watch, end });
}
