// SPDX-License-Identifier: UNLICENSED
// What the lab's programs read: the device registry, the headend's and the EST server's JSON configs and
// each agent's UCI file. Pure builders (text and objects out); main.ts writes them to the lab directory.
import { parseRegistry, type Registry } from '../../shared/registry/registry.js';
import { DC, SITE, TENANT_SERIAL, TENANT_VNI, type LabPlan } from './topology.js';

/**
 * The Connectors' serials (a, b: they enroll from their factory block) and extra serials for the headend
 * refusal tests, which hold ready-made certificates from the lab PKI.
 */
export const LAB_SERIALS = Object.freeze({
  a: TENANT_SERIAL.a,
  b: TENANT_SERIAL.b,
  expired: 'LAB-EXPIRED-01',
  denied: 'LAB-DENIED-01',
  rogue: 'LAB-ROGUE-01',
  /** A valid tenant-A device with no agent: the tests' own TLS peer (garbage records, openssl). */
  spare: 'LAB-SPARE-01',
});

/**
 * The registry before any unit is provisioned: the tenants and the ready-made refusal-test devices. The
 * Connectors join it the way real units do: allowlist import from the station, then a claim.
 */
export function labRegistry(now: Date): Registry {
  const at = now.toISOString();
  const seg = (vni: number) => ({ vni, vteps: [DC.hvFabricAddr], vtepPathMtu: DC.fabricMtu, multiSite: false, allowDhcpFromDc: false });
  return parseRegistry({
    version: 1,
    tenants: {
      a: { segments: { default: seg(TENANT_VNI.a) } },
      b: { segments: { default: seg(TENANT_VNI.b) } },
    },
    devices: {
      // Claimed like a real device, so only the expiry (resp. the denylist) can be the reason for refusal.
      [LAB_SERIALS.expired]: { state: 'claimed', tenant: 'a', segment: 'default', updatedAt: at },
      [LAB_SERIALS.denied]: { state: 'claimed', tenant: 'a', segment: 'default', updatedAt: at },
      [LAB_SERIALS.rogue]: { state: 'claimed', tenant: 'a', segment: 'default', updatedAt: at },
      [LAB_SERIALS.spare]: { state: 'claimed', tenant: 'a', segment: 'default', site: 'lab-spare', updatedAt: at },
    },
    denylist: [LAB_SERIALS.denied],
  });
}

export interface HeadendFiles {
  cert: string;
  key: string;
  deviceCa: string;
  registry: string;
  auditLog: string;
}

/** The headend's JSON config (src/headend/config.ts; docs/headend.md has every key). */
export function headendConfig(plan: LabPlan, files: HeadendFiles, metricsPort: number): Record<string, unknown> {
  return {
    listen: { host: plan.headend.publicAddr, port: plan.headend.port },
    tls: { cert: files.cert, key: files.key, deviceCa: files.deviceCa },
    registry: files.registry,
    auditLog: files.auditLog,
    metrics: { host: '127.0.0.1', port: metricsPort },
    vxlan: { localAddress: plan.headend.fabricAddr, port: DC.vxlanPort },
    // Short timers, matching the lab agents', so fault tests see recovery within seconds.
    session: { keepaliveMs: 1_000, deadAfterMs: 3_000 },
  };
}

export interface EstFiles {
  cert: string;
  key: string;
  factoryCas: readonly string[];
  deviceCaCert: string;
  deviceCaKey: string;
  registry: string;
  issuanceLog: string;
}

export interface EstTimers {
  /** Operational certificate lifetime, s (the renewal test uses a short one). */
  certLifetimeS: number;
  /** Retry-After for unclaimed units, s: short so a claim takes effect within seconds. */
  retryAfterS: number;
}

/** Lab EST defaults: one day, and a 2 s retry so the claim test is quick. */
export const LAB_EST_TIMERS: EstTimers = Object.freeze({ certLifetimeS: 86_400, retryAfterS: 2 });

/** `connector enroll-server` config (docs/provisioning.md) listening next to the headend in `dc`. */
export function estConfig(plan: LabPlan, files: EstFiles, timers: EstTimers): Record<string, unknown> {
  return {
    host: plan.headend.publicAddr,
    port: DC.estPort,
    tlsCertFile: files.cert,
    tlsKeyFile: files.key,
    factoryCaFiles: [...files.factoryCas],
    deviceCaCertFile: files.deviceCaCert,
    deviceCaKeyFile: files.deviceCaKey,
    registryFile: files.registry,
    issuanceLogFile: files.issuanceLog,
    certLifetimeS: timers.certLifetimeS,
    retryAfterS: timers.retryAfterS,
    // The agent renews at 2/3 of notAfter - notBefore; a 300 s backdate would put that point in the
    // past for lifetimes under 150 s, so the lab's clocks (all the same host clock) need only a little.
    backdateS: 5,
  };
}

export function estUrl(plan: LabPlan): string {
  return `https://${plan.headend.publicAddr}:${DC.estPort}/.well-known/est`;
}

export interface AgentFiles {
  identityDir: string;
  statusSocket: string;
  /** The unit's disk file holding the factory block. */
  factoryBlockPath?: string;
  factoryBlockOffset?: number;
}

function uciQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** /etc/config/connector of one lab Connector (format: docs/agent-config.md). */
export function agentUci(plan: LabPlan, site: string, files: AgentFiles): string {
  const url = `tls://${plan.headend.publicAddr}:${plan.headend.port}`;
  const lines = [
    "config agent 'agent'",
    `\toption enabled '1'`,
    `\tlist headend ${uciQuote(url)}`,
    `\toption bridge 'br-lan'`,
    `\toption tap_name 'tap-dr'`,
    `\toption identity_dir ${uciQuote(files.identityDir)}`,
    `\toption site ${uciQuote(site)}`,
    `\toption log_level 'info'`,
    `\toption log_format 'json'`,
    `\toption status_socket ${uciQuote(files.statusSocket)}`,
    // Short timers so the fault tests see a recovery in seconds, as on a real device with defaults tuned.
    `\toption keepalive_s '1'`,
    `\toption dead_after_s '3'`,
    `\toption send_queue_frames '512'`,
    '',
    // Layer-2 policy (docs/l2-policy.md): proxy ARP and the split-brain block on, as shipped.
    "config l2 'l2'",
    `\toption proxy_arp '1'`,
    `\toption split_brain_block '1'`,
    `\toption own_ip ${uciQuote(SITE.connector.ip)}`,
    '',
  ];
  if (files.factoryBlockPath) {
    // Zero-touch: the identity comes from EST enrollment with the IDevID in the factory block.
    lines.push(
      "config enroll 'enroll'",
      `\toption factory_block_path ${uciQuote(files.factoryBlockPath)}`,
      `\toption factory_block_offset '${files.factoryBlockOffset ?? 25_165_824}'`,
      '',
    );
  }
  return lines.join('\n');
}
