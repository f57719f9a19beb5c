// SPDX-License-Identifier: UNLICENSED
// `connector <command> ...`: the datacentre/factory/release tool. Each command lives in its own module
// under ./commands/ and is loaded only when used, so one command's dependencies never slow another.
import { runCommand, runProgram, type CommandTable } from '../shared/cli/dispatch.js';

// name -> [module under ./commands/, one-line summary]. Keep alphabetical.
export const COMMANDS: CommandTable = {
  audit: ['audit.js', 'headend session audit log: export --format csv|jsonl --log FILE | verify --log FILE'],
  console: ['console.js', 'operator web console and JSON API: serve --config FILE | operator add'],
  dc: ['dc.js', 'datacentre PKI: init DIR (DC CA, device CA, headend and EST server certificates)'],
  drill: ['drill.js', 'DR drills: start | status | end | probe | serve (in place or sandbox, TTL, JSON API)'],
  'enroll-server': ['enroll-server.js', 'EST server (RFC 7030) issuing operational certificates: --config FILE'],
  failover: ['failover.js', 'full-site failover: start (DC gateway for a lost site) | end (handover back)'],
  factory: ['factory.js', 'factory station: init-ca | provision | read (factory block, manifest)'],
  headend: ['headend.js', 'run the datacentre tunnel headend: --config FILE'],
  lab: ['lab.js', 'network lab in namespaces: up | down | status | restart PROCESS | exec NODE -- CMD'],
  ota: ['ota.js', 'OTA channel: broker-config | serve | rollout | status'],
  registry: ['registry.js', 'device registry admin: claim | revoke | list | import | migrate (file -> PostgreSQL)'],
  release: ['release.js', 'signed releases: keygen | manifest | sign | verify (usign/signify Ed25519)'],
  segment: ['segment.js', "a tenant's L2 segments: add | list | remove (VNI, VTEPs, path MTU, options)"],
  tenant: ['tenant.js', 'registry tenants: add | list | remove'],
  unit: ['unit.js', 'one Connector in the registry: allow | claim | revoke | list'],
};

await runProgram('connector', () => runCommand('connector', COMMANDS, process.argv.slice(2), new URL('./commands/', import.meta.url)));
