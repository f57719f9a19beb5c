// SPDX-License-Identifier: UNLICENSED
// Configuration of the Layer-2 forwarding policy: one frozen, validated object. Defaults live in one
// constant; `parsePolicyConfig` turns raw UCI/env strings into it and names the key on bad input;
// `policyConfig` merges typed overrides (agent code and tests).
import { ConfigError } from '../../../shared/errors.js';
import { macKey, parseMac } from '../../../shared/l2/mac.js';
import { parseIpv4 } from './ipv4.js';
import { parseIpv6 } from './nd.js';

/**
 * RFC 7348 section 6.1: decapsulated frames with an inner VLAN tag SHOULD be discarded and tagged frames
 * SHOULD NOT be tunnelled, unless configured otherwise.
 * - 'drop' (default): tagged frames are dropped in both directions ('vlan-tagged'). The RFC would have
 *   the encapsulating side strip the tag instead; we do not, because a tagged frame on the untagged LAN
 *   bridge belongs to another broadcast domain and stripping it would merge that VLAN into the extended
 *   segment.
 * - 'transparent': tagged frames cross unchanged in both directions with MAC learning, guards and BUM
 *   limits, but no ARP/ND learning or proxying (their addresses belong to other broadcast domains).
 */
export type VlanMode = 'drop' | 'transparent';
export const VLAN_MODES: readonly VlanMode[] = ['drop', 'transparent'];

/** 0 disables a dimension. */
export interface RateLimit {
  readonly pps: number;
  readonly bps: number;
}

export interface BumLimits {
  readonly broadcast: RateLimit;
  readonly unknownUnicast: RateLimit;
  readonly multicast: RateLimit;
}

export interface PolicyConfig {
  readonly macAgeMs: number;
  readonly macMaxEntries: number;
  readonly macMoveThreshold: number;
  readonly macMoveWindowMs: number;
  readonly macFreezeMs: number;
  readonly neighbourAgeMs: number;
  readonly neighbourMaxEntries: number;
  readonly splitBrainWindowMs: number;
  /** Stop DC-side claims for a split-brain or contested IP from reaching the LAN. */
  readonly splitBrainBlock: boolean;
  /** How long a probed LAN holder has to answer before the DC may take its IP; 0 disables probing. */
  readonly holderVerifyMs: number;
  readonly proxyArp: boolean;
  readonly proxyNd: boolean;
  /** A remote binding is answered for only if seen within this long. */
  readonly proxyFreshMs: number;
  /** ARP requests / NS from the LAN that the proxy could not answer and that cross the tunnel. */
  readonly missLimit: RateLimit;
  /** GARP, ARP probes, unsolicited NA and DAD NS, per direction (exempt from the miss and BUM limits). */
  readonly announceLimit: RateLimit;
  readonly bumFromLan: BumLimits;
  readonly bumFromTunnel: BumLimits;
  readonly allowDhcpFromTunnel: boolean;
  /** Learn IP -> MAC bindings from DHCP ACKs (yiaddr -> chaddr) that the policy lets through. */
  readonly learnFromDhcp: boolean;
  readonly vlanMode: VlanMode;
  /** The Connector's own MACs (48-bit keys). */
  readonly ownMacs: readonly number[];
  /** The Connector's own IPv4 addresses (u32). */
  readonly ownIpv4: readonly number[];
  /** The Connector's own IPv6 addresses (16 bytes each). */
  readonly ownIpv6: readonly Buffer[];
  /** How long a BPDU from the tunnel blocks it; 0 blocks until unblocked by the operator. */
  readonly bpduBlockMs: number;
  readonly reoriginateCopies: number;
  readonly reoriginateIntervalMs: number;
}

const limit = (pps: number, bps: number): RateLimit => Object.freeze({ pps, bps });

export const DEFAULT_POLICY_CONFIG: PolicyConfig = Object.freeze({
  macAgeMs: 300_000,
  macMaxEntries: 4096,
  macMoveThreshold: 5,
  macMoveWindowMs: 180_000,
  macFreezeMs: 300_000,
  neighbourAgeMs: 600_000,
  neighbourMaxEntries: 4096,
  splitBrainWindowMs: 60_000,
  splitBrainBlock: true,
  holderVerifyMs: 3000,
  proxyArp: true,
  proxyNd: true,
  proxyFreshMs: 120_000,
  missLimit: limit(100, 0),
  announceLimit: limit(100, 0),
  bumFromLan: Object.freeze({
    broadcast: limit(500, 4_000_000),
    unknownUnicast: limit(2000, 50_000_000),
    multicast: limit(1000, 8_000_000),
  }),
  bumFromTunnel: Object.freeze({
    broadcast: limit(500, 4_000_000),
    unknownUnicast: limit(2000, 50_000_000),
    multicast: limit(1000, 8_000_000),
  }),
  allowDhcpFromTunnel: false,
  learnFromDhcp: true,
  vlanMode: 'drop',
  ownMacs: Object.freeze([]),
  ownIpv4: Object.freeze([]),
  ownIpv6: Object.freeze([]),
  bpduBlockMs: 300_000,
  reoriginateCopies: 3,
  reoriginateIntervalMs: 1000,
});

export type PolicyConfigOverrides = { readonly [K in keyof PolicyConfig]?: PolicyConfig[K] };

/** Defaults merged with typed overrides, validated and frozen. Throws ConfigError naming the field. */
export function policyConfig(overrides: PolicyConfigOverrides = {}): PolicyConfig {
  const c: PolicyConfig = { ...DEFAULT_POLICY_CONFIG, ...stripUndefined(overrides) };
  for (const k of [
    'macAgeMs',
    'macMaxEntries',
    'macMoveThreshold',
    'macMoveWindowMs',
    'macFreezeMs',
    'neighbourAgeMs',
    'neighbourMaxEntries',
    'splitBrainWindowMs',
    'proxyFreshMs',
    'reoriginateCopies',
    'reoriginateIntervalMs',
  ] as const) {
    const v = c[k];
    if (!(v > 0) || Number.isNaN(v)) throw new ConfigError(k, `must be a number > 0, got ${v}`);
  }
  if (!(c.holderVerifyMs >= 0)) throw new ConfigError('holderVerifyMs', `must be >= 0, got ${c.holderVerifyMs}`);
  if (!(c.bpduBlockMs >= 0)) throw new ConfigError('bpduBlockMs', `must be >= 0, got ${c.bpduBlockMs}`);
  if (!VLAN_MODES.includes(c.vlanMode))
    throw new ConfigError('vlanMode', `must be one of ${VLAN_MODES.join(', ')}, got ${String(c.vlanMode)}`);
  checkLimit('missLimit', c.missLimit);
  checkLimit('announceLimit', c.announceLimit);
  for (const dir of ['bumFromLan', 'bumFromTunnel'] as const) {
    for (const cls of ['broadcast', 'unknownUnicast', 'multicast'] as const) checkLimit(`${dir}.${cls}`, c[dir][cls]);
  }
  for (const ip of c.ownIpv6) if (ip.length !== 16) throw new ConfigError('ownIpv6', 'each address must be 16 bytes');
  return Object.freeze({
    ...c,
    ownMacs: Object.freeze([...c.ownMacs]),
    ownIpv4: Object.freeze([...c.ownIpv4]),
    ownIpv6: Object.freeze([...c.ownIpv6]),
  });
}

function checkLimit(key: string, l: RateLimit): void {
  if (!(l.pps >= 0) || !Number.isFinite(l.pps))
    throw new ConfigError(key, `pps must be a finite number >= 0 (0 = unlimited), got ${l.pps}`);
  if (!(l.bps >= 0) || !Number.isFinite(l.bps))
    throw new ConfigError(key, `bps must be a finite number >= 0 (0 = unlimited), got ${l.bps}`);
}

function stripUndefined(o: PolicyConfigOverrides): Partial<PolicyConfig> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Partial<PolicyConfig>;
}

/** The raw configuration keys (UCI options of the `l2` section, documented in docs/l2-policy.md). */
export const POLICY_CONFIG_KEYS = [
  'mac_age_s',
  'mac_max_entries',
  'mac_move_threshold',
  'mac_move_window_s',
  'mac_freeze_s',
  'neigh_age_s',
  'neigh_max_entries',
  'split_brain_window_s',
  'split_brain_block',
  'holder_verify_ms',
  'proxy_arp',
  'proxy_nd',
  'proxy_fresh_s',
  'miss_pps',
  'announce_pps',
  'bum_lan_broadcast_pps',
  'bum_lan_broadcast_bps',
  'bum_lan_unknown_unicast_pps',
  'bum_lan_unknown_unicast_bps',
  'bum_lan_multicast_pps',
  'bum_lan_multicast_bps',
  'bum_tunnel_broadcast_pps',
  'bum_tunnel_broadcast_bps',
  'bum_tunnel_unknown_unicast_pps',
  'bum_tunnel_unknown_unicast_bps',
  'bum_tunnel_multicast_pps',
  'bum_tunnel_multicast_bps',
  'allow_dhcp_from_tunnel',
  'learn_dhcp',
  'vlan_mode',
  'own_mac',
  'own_ip',
  'bpdu_block_s',
  'reoriginate_copies',
  'reoriginate_interval_ms',
] as const;
export type PolicyConfigKey = (typeof POLICY_CONFIG_KEYS)[number];

/**
 * Raw strings (UCI options or env) in, a validated config out. Unknown keys are rejected so a typo does
 * not silently leave a default in place. Lists (own_mac, own_ip) are space separated.
 */
export function parsePolicyConfig(raw: Readonly<Record<string, string | undefined>>): PolicyConfig {
  for (const k of Object.keys(raw)) {
    if (raw[k] !== undefined && !(POLICY_CONFIG_KEYS as readonly string[]).includes(k)) {
      throw new ConfigError(k, `unknown Layer-2 policy option; known options: ${POLICY_CONFIG_KEYS.join(', ')}`);
    }
  }
  const d = DEFAULT_POLICY_CONFIG;
  const num = (k: PolicyConfigKey, def: number, min: number, max: number, scale = 1): number => {
    const t = raw[k];
    if (t === undefined || t.trim() === '') return def * scale;
    if (!/^\d+(\.\d+)?$/.test(t.trim())) throw new ConfigError(k, `"${t}" is not a number`);
    const v = Number(t);
    if (v < min || v > max) throw new ConfigError(k, `${v} is out of range ${min}..${max}`);
    return v * scale;
  };
  const bool = (k: PolicyConfigKey, def: boolean): boolean => {
    const t = raw[k]?.trim();
    if (t === undefined || t === '') return def;
    if (['1', 'on', 'yes', 'true'].includes(t)) return true;
    if (['0', 'off', 'no', 'false'].includes(t)) return false;
    throw new ConfigError(k, `"${t}" is not a boolean; write 1 or 0`);
  };
  const bum = (dir: 'lan' | 'tunnel', def: BumLimits): BumLimits => {
    const one = (cls: 'broadcast' | 'unknown_unicast' | 'multicast', l: RateLimit): RateLimit =>
      limit(
        num(`bum_${dir}_${cls}_pps` as PolicyConfigKey, l.pps, 0, 10_000_000),
        num(`bum_${dir}_${cls}_bps` as PolicyConfigKey, l.bps, 0, 100_000_000_000),
      );
    return Object.freeze({
      broadcast: one('broadcast', def.broadcast),
      unknownUnicast: one('unknown_unicast', def.unknownUnicast),
      multicast: one('multicast', def.multicast),
    });
  };
  const words = (k: PolicyConfigKey): string[] => (raw[k] ?? '').split(/[\s,]+/).filter(Boolean);
  const ownIpv4: number[] = [];
  const ownIpv6: Buffer[] = [];
  for (const w of words('own_ip')) {
    if (w.includes(':')) ownIpv6.push(parseIpv6(w, 'own_ip'));
    else ownIpv4.push(parseIpv4(w, 'own_ip'));
  }
  const vlan = raw['vlan_mode']?.trim() || d.vlanMode;
  if (!(VLAN_MODES as readonly string[]).includes(vlan))
    throw new ConfigError('vlan_mode', `"${vlan}" is not one of ${VLAN_MODES.join(', ')}`);
  return policyConfig({
    macAgeMs: num('mac_age_s', d.macAgeMs / 1000, 10, 86_400, 1000),
    macMaxEntries: num('mac_max_entries', d.macMaxEntries, 16, 1_000_000),
    macMoveThreshold: num('mac_move_threshold', d.macMoveThreshold, 2, 1000),
    macMoveWindowMs: num('mac_move_window_s', d.macMoveWindowMs / 1000, 1, 86_400, 1000),
    macFreezeMs: num('mac_freeze_s', d.macFreezeMs / 1000, 1, 86_400 * 365, 1000),
    neighbourAgeMs: num('neigh_age_s', d.neighbourAgeMs / 1000, 10, 86_400, 1000),
    neighbourMaxEntries: num('neigh_max_entries', d.neighbourMaxEntries, 16, 1_000_000),
    splitBrainWindowMs: num('split_brain_window_s', d.splitBrainWindowMs / 1000, 1, 3600, 1000),
    splitBrainBlock: bool('split_brain_block', d.splitBrainBlock),
    holderVerifyMs: num('holder_verify_ms', d.holderVerifyMs, 0, 60_000),
    proxyArp: bool('proxy_arp', d.proxyArp),
    proxyNd: bool('proxy_nd', d.proxyNd),
    proxyFreshMs: num('proxy_fresh_s', d.proxyFreshMs / 1000, 1, 86_400, 1000),
    missLimit: limit(num('miss_pps', d.missLimit.pps, 0, 1_000_000), 0),
    announceLimit: limit(num('announce_pps', d.announceLimit.pps, 0, 1_000_000), 0),
    bumFromLan: bum('lan', d.bumFromLan),
    bumFromTunnel: bum('tunnel', d.bumFromTunnel),
    allowDhcpFromTunnel: bool('allow_dhcp_from_tunnel', d.allowDhcpFromTunnel),
    learnFromDhcp: bool('learn_dhcp', d.learnFromDhcp),
    vlanMode: vlan as VlanMode,
    ownMacs: words('own_mac').map((w) => macKey(parseMac(w, 'own_mac'))),
    ownIpv4,
    ownIpv6,
    bpduBlockMs: num('bpdu_block_s', d.bpduBlockMs / 1000, 0, 86_400 * 365, 1000),
    reoriginateCopies: num('reoriginate_copies', d.reoriginateCopies, 1, 10),
    reoriginateIntervalMs: num('reoriginate_interval_ms', d.reoriginateIntervalMs, 100, 60_000),
  });
}
