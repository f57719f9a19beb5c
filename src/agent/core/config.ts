// SPDX-License-Identifier: UNLICENSED
// Raw UCI text in, a validated frozen AgentConfig out. Defaults live in one table; every key carries its
// unit. Errors name the UCI section.option that is wrong and what it accepts.
import { ConfigError } from '../../shared/errors.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../../shared/log.js';
import { findSection, parseUci, type UciSection } from './uci.js';
import { parsePolicyConfig, type PolicyConfig } from './l2/policy-config.js';

export interface AgentConfig {
  readonly enabled: boolean;
  /** May be empty: the unit still enrolls, then waits with a clear status (no restart loop under procd). */
  readonly headends: readonly URL[];
  readonly bridge: string;
  readonly tapName: string;
  /** Attach the TAP to the bridge with `ip link` ('ip'), or leave it to netifd's br-lan ports ('netifd'). */
  readonly attach: 'ip' | 'netifd';
  readonly identityDir: string;
  readonly site: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly statusSocket: string;
  readonly keepaliveMs: number;
  readonly deadAfterMs: number;
  readonly sendQueueFrames: number;
  /** Ceiling of the jittered exponential reconnect backoff. */
  readonly reconnectMaxMs: number;
  /** The Layer-2 policy, from the `config l2` section (keys: docs/l2-policy.md). */
  readonly l2: PolicyConfig;
  readonly enroll: Readonly<{
    url: string | undefined;
    factoryBlockPath: string;
    factoryBlockOffset: number;
    /** Seconds since the epoch before which the clock is taken as unset (the image's build time). */
    minTimeS: number;
  }>;
  readonly ota: Readonly<{
    /** mqtts://host:port of the fleet broker; unset: no OTA channel. */
    broker: string | undefined;
    /** CA that signs the broker's and the artifact server's certificates (default: the DC anchor). */
    caFile: string | undefined;
    pubkeySlots: readonly string[];
    stateDir: string;
    /** A/B agent slots: <slots_dir>/slots/{a,b} and <slots_dir>/current. */
    slotsDir: string;
    board: string;
    sysupgradeCommand: string;
    healthDeadlineMs: number;
  }>;
}

const DEFAULTS = {
  bridge: 'br-lan',
  tapName: 'tap-dr',
  attach: 'ip',
  identityDir: '/etc/connector',
  logLevel: 'info',
  logFormat: 'human',
  statusSocket: '/var/run/connector/agent.sock',
  keepaliveS: 5,
  deadAfterS: 15,
  sendQueueFrames: 512,
  // Short, so a unit is back within seconds of a headend restart; raise it for very large fleets.
  reconnectMaxS: 2,
  factoryBlockPath: '/dev/mmcblk0',
  factoryBlockOffset: 24 * 1024 * 1024,
  otaStateDir: '/etc/connector/ota',
  otaSlotsDir: '/opt/connector',
  board: 'friendlyarm,nanopi-r3s',
  sysupgrade: '/sbin/sysupgrade',
  healthDeadlineS: 120,
} as const;

type Raw = Readonly<{ section: string; options: Record<string, string>; lists: Record<string, string[]> }>;

function raw(sec: UciSection | undefined, name: string): Raw {
  return { section: name, options: sec?.options ?? {}, lists: sec?.lists ?? {} };
}

function key(r: Raw, k: string): string {
  return `${r.section}.${k}`;
}

function str(r: Raw, k: string, def: string): string {
  const v = r.options[k];
  return v === undefined || v === '' ? def : v;
}

function bool(r: Raw, k: string, def: boolean): boolean {
  const v = r.options[k];
  if (v === undefined || v === '') return def;
  if (['1', 'on', 'true', 'yes', 'enabled'].includes(v)) return true;
  if (['0', 'off', 'false', 'no', 'disabled'].includes(v)) return false;
  throw new ConfigError(key(r, k), `"${v}" is not a boolean (use 1 or 0)`);
}

function int(r: Raw, k: string, min: number, max: number, def: number): number {
  const v = r.options[k];
  if (v === undefined || v === '') return def;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(key(r, k), `"${v}" is not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(key(r, k), `${n} is outside ${min}..${max}`);
  return n;
}

function oneOf<T extends string>(r: Raw, k: string, allowed: readonly T[], def: T): T {
  const v = str(r, k, def);
  if (!allowed.includes(v as T)) throw new ConfigError(key(r, k), `"${v}" is not one of ${allowed.join(', ')}`);
  return v as T;
}

function ifname(r: Raw, k: string, def: string): string {
  const v = str(r, k, def);
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(v)) throw new ConfigError(key(r, k), `"${v}" is not a valid interface name (1-15 chars)`);
  return v;
}

export function parseHeadendUrl(text: string, where: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError(where, `"${text}" is not a URL; expected tls://host:port`);
  }
  if (u.protocol !== 'tls:') throw new ConfigError(where, `"${text}" must use the tls:// scheme`);
  if (!u.hostname) throw new ConfigError(where, `"${text}" has no host`);
  if (!u.port) u.port = '443';
  return u;
}

function l2Config(sec: UciSection | undefined): PolicyConfig {
  // Lists (own_mac, own_ip) are space-separated values to the policy parser, so a `list` line works as
  // well as an option, and an unknown list name is rejected like an unknown option.
  const raw: Record<string, string> = { ...(sec?.options ?? {}) };
  for (const [k, vs] of Object.entries(sec?.lists ?? {})) raw[k] = [raw[k], ...vs].filter(Boolean).join(' ');
  try {
    return parsePolicyConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`l2.${e.key}`, e.message.replace(/^config "[^"]*": /, ''), { cause: e });
    throw e;
  }
}

export function parseAgentConfig(text: string): AgentConfig {
  const doc = parseUci(text);
  const a = raw(findSection(doc, 'agent'), 'agent');
  if (findSection(doc, 'proxy')) throw new ConfigError('proxy', 'the `config proxy` section was renamed `config l2` (see docs/l2-policy.md)');
  const e = raw(findSection(doc, 'enroll'), 'enroll');
  const o = raw(findSection(doc, 'ota'), 'ota');
  const headends = (a.lists['headend'] ?? (a.options['headend'] ? [a.options['headend']] : [])).map((h) =>
    parseHeadendUrl(h, key(a, 'headend')),
  );
  const slots = [o.options['pubkey_slot0'], o.options['pubkey_slot1']].filter((s): s is string => !!s);
  if (o.options['broker'] && !/^mqtts:\/\/[^/]+/.test(o.options['broker'])) {
    throw new ConfigError(key(o, 'broker'), `"${o.options['broker']}" must be mqtts://host:port (TLS with the device certificate)`);
  }
  if (o.options['broker'] && slots.length === 0) throw new ConfigError(key(o, 'pubkey_slot0'), 'an OTA broker needs at least one release public key slot');

  if (a.lists['own_mac'] || a.options['own_mac']) throw new ConfigError(key(a, 'own_mac'), 'moved to the l2 section: `option own_mac` in `config l2` (see docs/l2-policy.md)');
  const identityDir = str(a, 'identity_dir', DEFAULTS.identityDir);
  const keepaliveS = int(a, 'keepalive_s', 1, 300, DEFAULTS.keepaliveS);
  return Object.freeze({
    enabled: bool(a, 'enabled', true),
    headends: Object.freeze(headends),
    bridge: ifname(a, 'bridge', DEFAULTS.bridge),
    tapName: ifname(a, 'tap_name', DEFAULTS.tapName),
    attach: oneOf(a, 'attach', ['ip', 'netifd'] as const, DEFAULTS.attach),
    identityDir,
    site: str(a, 'site', ''),
    logLevel: oneOf(a, 'log_level', LOG_LEVELS, DEFAULTS.logLevel),
    logFormat: oneOf(a, 'log_format', ['human', 'json'] as const, DEFAULTS.logFormat),
    statusSocket: str(a, 'status_socket', DEFAULTS.statusSocket),
    keepaliveMs: keepaliveS * 1000,
    deadAfterMs: int(a, 'dead_after_s', keepaliveS + 1, 600, Math.max(DEFAULTS.deadAfterS, keepaliveS * 3)) * 1000,
    sendQueueFrames: int(a, 'send_queue_frames', 16, 8192, DEFAULTS.sendQueueFrames),
    reconnectMaxMs: int(a, 'reconnect_max_s', 1, 600, DEFAULTS.reconnectMaxS) * 1000,
    l2: l2Config(findSection(doc, 'l2')),
    enroll: Object.freeze({
      url: e.options['url'] || undefined,
      factoryBlockPath: str(e, 'factory_block_path', DEFAULTS.factoryBlockPath),
      factoryBlockOffset: int(e, 'factory_block_offset', 0, 2 ** 40, DEFAULTS.factoryBlockOffset),
      minTimeS: int(e, 'min_time', 0, 2 ** 40, 0),
    }),
    ota: Object.freeze({
      broker: o.options['broker'] || undefined,
      caFile: o.options['ca_file'] || undefined,
      pubkeySlots: Object.freeze(slots),
      stateDir: str(o, 'state_dir', DEFAULTS.otaStateDir),
      slotsDir: str(o, 'slots_dir', DEFAULTS.otaSlotsDir),
      board: str(o, 'board', DEFAULTS.board),
      sysupgradeCommand: str(o, 'sysupgrade_command', DEFAULTS.sysupgrade),
      healthDeadlineMs: int(o, 'health_deadline_s', 5, 3600, DEFAULTS.healthDeadlineS) * 1000,
    }),
  });
}
