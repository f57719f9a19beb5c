// SPDX-License-Identifier: UNLICENSED
// `connector drill start | status | end | probe | serve`: DR drills (docs/dr-operations.md). Parses the
// command line; src/dr/main.ts does the work.
import { parseCommandArgs, requireStr, runArgvSubcommand, str } from '../../shared/cli/args.js';
import { UsageError } from '../../shared/errors.js';
import { GATEWAY_OPTIONS, gatewayPlacementOf } from './failover.js';
import { drillEnd, drillGateway, drillProbe, drillReport, drillServe, drillStart, drillStatus, drillVerifyReport } from '../../dr/main.js';

const HELP = `usage: connector drill <start|status|end|gateway|probe|serve|report|verify-report> --registry FILE [--book FILE] [options]

  start   --tenant T --kind in-place|sandbox [--segment S] [--vm-ip IP] [--ttl SECONDS] [--allow-outbound]
          in-place: the drill VM joins the tenant's segment; sandbox: a new segment with its own VNI
          mirroring the tenant's (no unit session is ever admitted to it), removed at the end or after
          the TTL (default 4 h)
  status  [--id ID]                                  drills, their state, timeline and time left (JSON)
  end     --id ID                                    ends a drill (a sandbox segment is removed)
  gateway --id ID --gateway IP[/PREFIX][,MAC] --dc-netns NS --dc-bridge BR --uplink-netns NS --uplink CIDR,PEER_IP
          a sandbox drill's gateway on its segment in the datacentre: the router's address for the
          restored VMs; it routes out (NAT) only if the drill was started with --allow-outbound
  probe   --id ID --target IP --ifname IF [--netns NS] [--side lan|dc] [--count N]
          ARP + ICMP from one side, recorded in the drill's timeline; exit 1 when unreachable
  serve   [--host H] [--port P] [--audit-log F]      JSON API for the console (default 127.0.0.1:8088);
                                                     --audit-log (the headend's) lets it build reports
  report  --id ID --audit-log HEADEND_AUDIT [--out DIR]
          a drill's or a failover's report: ID.report.json and a self-contained ID.report.html, naming
          the audit records (seq, SHA-256) they were built from
  verify-report --report FILE.json --audit-log HEADEND_AUDIT
          exit 0 when the report is unchanged and every audit record it names is in the intact chain

--registry defaults to $CONNECTOR_REGISTRY; --book defaults to drills.json beside the registry.`;

const COMMON = { registry: { type: 'string' as const }, book: { type: 'string' as const } };

function num(p: ReturnType<typeof parseCommandArgs>, key: string, def: number): number {
  const v = str(p, key);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${key} must be a whole number, not "${v}"`);
  return n;
}

function start(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    {
      ...COMMON,
      tenant: { type: 'string' },
      kind: { type: 'string' },
      segment: { type: 'string' },
      'vm-ip': { type: 'string' },
      ttl: { type: 'string' },
      'allow-outbound': { type: 'boolean' },
    },
    false,
  );
  return drillStart({
    registry: str(p, 'registry'),
    book: str(p, 'book'),
    tenant: requireStr(p, 'tenant'),
    kind: requireStr(p, 'kind'),
    segment: str(p, 'segment'),
    vmIp: str(p, 'vm-ip'),
    ttlS: str(p, 'ttl') === undefined ? undefined : num(p, 'ttl', 0),
    allowOutbound: p.values['allow-outbound'] === true,
  });
}

function status(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, id: { type: 'string' } }, false);
  return drillStatus({ registry: str(p, 'registry'), book: str(p, 'book'), id: str(p, 'id') });
}

function end(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, id: { type: 'string' } }, false);
  return drillEnd({ registry: str(p, 'registry'), book: str(p, 'book'), id: requireStr(p, 'id') });
}

function probe(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    {
      ...COMMON,
      id: { type: 'string' },
      target: { type: 'string' },
      ifname: { type: 'string' },
      netns: { type: 'string' },
      side: { type: 'string' },
      count: { type: 'string' },
    },
    false,
  );
  return drillProbe({
    registry: str(p, 'registry'),
    book: str(p, 'book'),
    id: requireStr(p, 'id'),
    target: requireStr(p, 'target'),
    ifname: requireStr(p, 'ifname'),
    netns: str(p, 'netns'),
    side: str(p, 'side') ?? 'lan',
    count: num(p, 'count', 3),
  });
}

function serve(rest: string[]): Promise<number> {
  const p = parseCommandArgs(
    rest,
    { ...COMMON, host: { type: 'string' }, port: { type: 'string' }, 'audit-log': { type: 'string' } },
    false,
  );
  return drillServe({
    registry: str(p, 'registry'),
    book: str(p, 'book'),
    host: str(p, 'host') ?? '127.0.0.1',
    port: num(p, 'port', 8088),
    auditLog: str(p, 'audit-log'),
  });
}

function report(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, id: { type: 'string' }, 'audit-log': { type: 'string' }, out: { type: 'string' } }, false);
  return drillReport({
    registry: str(p, 'registry'),
    book: str(p, 'book'),
    id: requireStr(p, 'id'),
    auditLog: requireStr(p, 'audit-log'),
    outDir: str(p, 'out') ?? '.',
  });
}

async function verifyReportCmd(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { report: { type: 'string' }, 'audit-log': { type: 'string' } }, false);
  return drillVerifyReport({ report: requireStr(p, 'report'), auditLog: requireStr(p, 'audit-log') });
}

function gateway(rest: string[]): Promise<number> {
  const p = parseCommandArgs(rest, { ...COMMON, ...GATEWAY_OPTIONS, id: { type: 'string' } }, false);
  return drillGateway({
    registry: str(p, 'registry'),
    book: str(p, 'book'),
    id: requireStr(p, 'id'),
    gateway: requireStr(p, 'gateway'),
    placement: gatewayPlacementOf(p),
  });
}

export async function run(argv: string[]): Promise<number> {
  return runArgvSubcommand('drill', argv, HELP, { start, status, end, gateway, probe, serve, report, 'verify-report': verifyReportCmd });
}
