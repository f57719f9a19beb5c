// SPDX-License-Identifier: UNLICENSED
// Raw UCI text in, a validated frozen AgentConfig out. Defaults live in one table; every key carries its
// unit. Every section and option of /etc/config/connector is checked against a schema (src/shared/schema):
// an unknown one is refused with the closest known name, so a typo never leaves a default in place.
// Errors carry the key `section.option` and say where it is: `config agent 'main', option tap_nam`.
import { ConfigError } from '../../shared/errors.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../../shared/log.js';
import {
  object,
  optional,
  parseWith,
  removed,
  unknownKeyProblem,
  type ObjectOf,
  type Schema,
  type SchemaIssue,
  type Shape,
} from '../../shared/schema/schema.js';
import { MAX_LANES } from '../../shared/tunnel/datagram/lanes.js';
import { boolText, intText, listText, oneOfText, patternText, text } from '../../shared/schema/text.js';
import { parseUci, type UciSection } from './uci.js';
import { parsePolicyConfig, POLICY_CONFIG_KEYS, type PolicyConfig } from './l2/policy-config.js';

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
  /** CoDel on the tunnel's send queue (RFC 8289): target and interval, ms. */
  readonly aqm: Readonly<{ targetMs: number; intervalMs: number }>;
  /** Highest tunnel protocol version offered (`max_protocol`, 1 or 2; docs/tunnel-protocol.md): 1 rolls back. */
  readonly maxProtocol: 1 | 2;
  /** Ceiling of the jittered exponential reconnect backoff. */
  readonly reconnectMaxMs: number;
  /**
   * The datagram data channel (docs/datagram.md): asked for unless turned off; a UDP port to use instead of
   * the offered one; `lanes` (`datagram_lanes`): lanes in all to ask for, each further one sealed and
   * opened on a worker thread of its own, each inner flow on one lane.
   */
  readonly datagram: Readonly<{ enabled: boolean; port: number | undefined; lanes: number }>;
  /** Runs of one flow's TCP segments from the tunnel go to the LAN as super-frames (`lan_coalesce`, like GRO). */
  readonly lanCoalesce: boolean;
  /**
   * The datagram socket's sends and the TAP's writes run on threads of their own, off the event loop
   * (`send_thread`, default off: measured, it cost more CPU than it took off the loop; docs/performance.md).
   */
  readonly sendThread: boolean;
  /** The Layer-2 policy, from the `config l2` section (keys: docs/l2-policy.md); each VLAN gets its own. */
  readonly l2: PolicyConfig;
  /** 802.1Q VLANs of the LAN trunk, each carried in its own tunnel session; untagged is always carried. */
  readonly vlans: readonly AgentVlan[];
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

export interface AgentVlan {
  /** 802.1Q VLAN ID, 1-4094. */
  readonly vid: number;
  /** The operator's name for it (logs, status); the registry decides its segment. */
  readonly name: string;
}

/** Each VLAN is one more TLS session and one more set of tables: HCX extends 8 networks per appliance. */
export const MAX_VLANS = 16;

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
  // With a second headend listed (docs/ha.md): a false alarm costs one reconnect to the other (~0.1 s),
  // a real failure costs the whole dead time, so it is found within 2 s (pings every 0.5 s).
  haKeepaliveS: 1,
  haDeadAfterS: 2,
  // A memory bound, not the congestion control: CoDel drops first under a standing queue.
  sendQueueFrames: 2048,
  aqmTargetMs: 5,
  aqmIntervalMs: 100,
  maxProtocol: 2,
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

const ifname = (): Schema<string> => patternText(/^[A-Za-z0-9_.@-]{1,15}$/, 'a valid interface name (1-15 chars)');
const MOVED_OWN_MAC = 'moved to the l2 section: `option own_mac` in `config l2` (see docs/l2-policy.md)';

/** Every section of /etc/config/connector and its options, in the order they are checked. */
const SECTIONS = {
  agent: {
    enabled: optional(boolText(), true),
    headend: optional(listText(), []),
    bridge: optional(ifname(), DEFAULTS.bridge),
    tap_name: optional(ifname(), DEFAULTS.tapName),
    attach: optional(oneOfText(['ip', 'netifd'] as const), DEFAULTS.attach),
    identity_dir: optional(text(), DEFAULTS.identityDir),
    site: optional(text(), ''),
    log_level: optional(oneOfText(LOG_LEVELS), DEFAULTS.logLevel),
    log_format: optional(oneOfText(['human', 'json'] as const), DEFAULTS.logFormat),
    status_socket: optional(text(), DEFAULTS.statusSocket),
    // Both defaults depend on the number of headends: set in parseAgentConfig.
    keepalive_s: optional(intText(1, 300)),
    dead_after_s: optional(intText(1, 600)),
    send_queue_frames: optional(intText(16, 16384), DEFAULTS.sendQueueFrames),
    aqm_target_ms: optional(intText(1, 1000), DEFAULTS.aqmTargetMs),
    aqm_interval_ms: optional(intText(10, 10_000), DEFAULTS.aqmIntervalMs),
    max_protocol: optional(intText(1, 2), DEFAULTS.maxProtocol),
    reconnect_max_s: optional(intText(1, 600), DEFAULTS.reconnectMaxS),
    // On: probed at each session start, TLS carries the frames until and unless datagrams work (docs/datagram.md).
    datagram: optional(boolText(), true),
    datagram_port: optional(intText(1, 65_535)),
    datagram_lanes: optional(intText(1, MAX_LANES), 1),
    lan_coalesce: optional(boolText(), true),
    send_thread: optional(boolText(), false),
    own_mac: removed(MOVED_OWN_MAC),
    vlan: optional(listText(), []),
  },
  enroll: {
    url: optional(text()),
    factory_block_path: optional(text(), DEFAULTS.factoryBlockPath),
    factory_block_offset: optional(intText(0, 2 ** 40), DEFAULTS.factoryBlockOffset),
    min_time: optional(intText(0, 2 ** 40), 0),
  },
  ota: {
    broker: optional(text()),
    ca_file: optional(text()),
    pubkey_slot0: optional(text()),
    pubkey_slot1: optional(text()),
    state_dir: optional(text(), DEFAULTS.otaStateDir),
    slots_dir: optional(text(), DEFAULTS.otaSlotsDir),
    board: optional(text(), DEFAULTS.board),
    sysupgrade_command: optional(text(), DEFAULTS.sysupgrade),
    health_deadline_s: optional(intText(5, 3600), DEFAULTS.healthDeadlineS),
  },
  // Values stay text: the policy parser owns their types and ranges (docs/l2-policy.md).
  l2: Object.fromEntries(POLICY_CONFIG_KEYS.map((k) => [k, optional(listText())])) as Record<
    (typeof POLICY_CONFIG_KEYS)[number],
    Schema<string[] | undefined>
  >,
  // Read by the image's uci-defaults script (one-port / two-port), not by the agent; known so it is not refused.
  network: { mode: optional(text()) },
} as const satisfies Record<string, Shape>;

type SectionType = keyof typeof SECTIONS;
const SECTION_TYPES = Object.keys(SECTIONS) as SectionType[];
/** Section types that were renamed, refused with a message naming the replacement. */
const RENAMED_SECTIONS: Readonly<Record<string, string>> = {
  proxy: 'the `config proxy` section was renamed `config l2` (see docs/l2-policy.md)',
};

function sectionLabel(sec: UciSection): string {
  return sec.name.startsWith('@') ? `config ${sec.type}` : `config ${sec.type} '${sec.name}'`;
}

/** A section's options and lists as one object: an empty option is unset (UCI's meaning), a list an array. */
function sectionValues(sec: UciSection): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(sec.options)) out[k] = v === '' ? undefined : v;
  for (const [k, vs] of Object.entries(sec.lists)) {
    const opt = out[k];
    out[k] = [...(typeof opt === 'string' ? [opt] : []), ...vs];
  }
  return out;
}

/** Where an operator finds `type.option`: `config agent 'main', option tap_name`. */
function whereIs(doc: readonly UciSection[], type: SectionType, option: string): string {
  const sec = doc.find((s) => s.type === type);
  return `${sec ? sectionLabel(sec) : `config ${type}`}, option ${option}`;
}

function parseSection<T extends SectionType>(doc: readonly UciSection[], type: T): ObjectOf<(typeof SECTIONS)[T]> {
  const found = doc.filter((s) => s.type === type);
  const sec = found[0] ?? { type, name: `@${type}[0]`, options: {}, lists: {} };
  if (found[1]) {
    throw new ConfigError(type, `more than one \`config ${type}\` section (${found.map(sectionLabel).join(', ')}); the agent reads one`, {
      where: sectionLabel(found[1]),
    });
  }
  const fail = (i: SchemaIssue): never => {
    const option = String(i.path[0]);
    throw new ConfigError(`${type}.${option}`, i.problem, { where: whereIs(doc, type, option) });
  };
  return parseWith(object(SECTIONS[type], { noun: 'option' }), sectionValues(sec), fail) as ObjectOf<(typeof SECTIONS)[T]>;
}

function checkSectionTypes(doc: readonly UciSection[]): void {
  for (const sec of doc) {
    if (Object.hasOwn(SECTIONS, sec.type)) continue;
    const renamed = RENAMED_SECTIONS[sec.type];
    throw new ConfigError(sec.type, renamed ?? unknownKeyProblem(sec.type, SECTION_TYPES, 'section type'), { where: sectionLabel(sec) });
  }
}

/** `key` is what the error names (e.g. `agent.headend`); `where` how an operator finds it in the file. */
export function parseHeadendUrl(text: string, key: string, where?: string): URL {
  const problem = (p: string): ConfigError => new ConfigError(key, p, where !== undefined ? { where } : {});
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw problem(`"${text}" is not a URL; expected tls://host:port`);
  }
  if (u.protocol !== 'tls:') throw problem(`"${text}" must use the tls:// scheme`);
  if (!u.hostname) throw problem(`"${text}" has no host`);
  if (!u.port) u.port = '443';
  return u;
}

function l2Config(doc: readonly UciSection[]): PolicyConfig {
  const values: Readonly<Record<string, readonly string[] | undefined>> = parseSection(doc, 'l2');
  // Lists (own_mac, own_ip) are space-separated values to the policy parser, so a `list` line works as
  // well as an option.
  const raw: Record<string, string> = {};
  for (const [k, vs] of Object.entries(values)) if (vs !== undefined) raw[k] = vs.join(' ');
  try {
    return parsePolicyConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`l2.${e.key}`, e.problem, { cause: e, where: whereIs(doc, 'l2', e.key) });
    throw e;
  }
}

/** `list vlan '10:servers'`: VLAN ID and name, each ID once. */
function parseVlans(items: readonly string[], refuse: (problem: string) => never): readonly AgentVlan[] {
  if (items.length > MAX_VLANS) refuse(`${items.length} VLANs; at most ${MAX_VLANS}`);
  const seen = new Set<number>();
  const out: AgentVlan[] = [];
  for (const item of items) {
    const m = /^(\d{1,4}):([A-Za-z0-9][A-Za-z0-9_-]{0,63})$/.exec(item);
    const vid = m ? Number(m[1]) : NaN;
    if (!m || vid < 1 || vid > 4094) refuse(`"${item}" must be VLAN_ID:name with an ID in 1..4094, e.g. '10:servers'`);
    if (seen.has(vid)) refuse(`VLAN ${vid} is listed twice`);
    seen.add(vid);
    out.push(Object.freeze({ vid, name: m[2] ?? '' }));
  }
  return Object.freeze(out);
}

export function parseAgentConfig(text: string): AgentConfig {
  const doc = parseUci(text);
  checkSectionTypes(doc);
  const a = parseSection(doc, 'agent');
  const e = parseSection(doc, 'enroll');
  const o = parseSection(doc, 'ota');
  // Rules across options, with the same key and location as a single option's.
  const refuse = (type: SectionType, option: string, problem: string): never => {
    throw new ConfigError(`${type}.${option}`, problem, { where: whereIs(doc, type, option) });
  };
  const headends = a.headend.map((h) => parseHeadendUrl(h, 'agent.headend', whereIs(doc, 'agent', 'headend')));
  const slots = [o.pubkey_slot0, o.pubkey_slot1].filter((s): s is string => !!s);
  if (o.broker && !/^mqtts:\/\/[^/]+/.test(o.broker))
    refuse('ota', 'broker', `"${o.broker}" must be mqtts://host:port (TLS with the device certificate)`);
  if (o.broker && slots.length === 0) refuse('ota', 'pubkey_slot0', 'an OTA broker needs at least one release public key slot');
  const ha = headends.length > 1;
  const keepaliveS = a.keepalive_s ?? (ha ? DEFAULTS.haKeepaliveS : DEFAULTS.keepaliveS);
  const deadAfterS =
    a.dead_after_s ?? (ha ? Math.max(DEFAULTS.haDeadAfterS, keepaliveS + 1) : Math.max(DEFAULTS.deadAfterS, keepaliveS * 3));
  if (deadAfterS < keepaliveS + 1) refuse('agent', 'dead_after_s', `${deadAfterS} is outside ${keepaliveS + 1}..600`);
  if (a.aqm_target_ms >= a.aqm_interval_ms) {
    refuse(
      'agent',
      'aqm_target_ms',
      `${a.aqm_target_ms} must be below aqm_interval_ms (${a.aqm_interval_ms}); RFC 8289 suggests 5 to 10 % of it`,
    );
  }
  parseSection(doc, 'network');
  const vlans = parseVlans(a.vlan, (problem) => refuse('agent', 'vlan', problem));
  return Object.freeze({
    enabled: a.enabled,
    headends: Object.freeze(headends),
    bridge: a.bridge,
    tapName: a.tap_name,
    attach: a.attach,
    identityDir: a.identity_dir,
    site: a.site,
    logLevel: a.log_level,
    logFormat: a.log_format,
    statusSocket: a.status_socket,
    keepaliveMs: keepaliveS * 1000,
    deadAfterMs: deadAfterS * 1000,
    sendQueueFrames: a.send_queue_frames,
    aqm: Object.freeze({ targetMs: a.aqm_target_ms, intervalMs: a.aqm_interval_ms }),
    maxProtocol: a.max_protocol === 1 ? 1 : 2,
    reconnectMaxMs: a.reconnect_max_s * 1000,
    datagram: Object.freeze({ enabled: a.datagram, port: a.datagram_port, lanes: a.datagram_lanes }),
    lanCoalesce: a.lan_coalesce,
    sendThread: a.send_thread,
    l2: l2Config(doc),
    vlans,
    enroll: Object.freeze({
      url: e.url,
      factoryBlockPath: e.factory_block_path,
      factoryBlockOffset: e.factory_block_offset,
      minTimeS: e.min_time,
    }),
    ota: Object.freeze({
      broker: o.broker,
      caFile: o.ca_file,
      pubkeySlots: Object.freeze(slots),
      stateDir: o.state_dir,
      slotsDir: o.slots_dir,
      board: o.board,
      sysupgradeCommand: o.sysupgrade_command,
      healthDeadlineMs: o.health_deadline_s * 1000,
    }),
  });
}
