// SPDX-License-Identifier: UNLICENSED
// `connector headend --config FILE`: a JSON document in, a validated, frozen HeadendConfig out. Relative
// paths are resolved against the config file's directory so a config and its PEM files travel together.
// Pure apart from the caller handing in the text and the base directory.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../shared/errors.js';
import {
  formatPath,
  integer,
  nullable,
  object,
  optional,
  parseJsonText,
  parseWith,
  section,
  string,
  type SchemaIssue,
  boolean,
  oneOf,
} from '../../shared/schema/schema.js';
import { checkPrefix } from './kernel-l2-plan.js';
import { VXLAN_UDP_PORT } from '../../shared/l2/vxlan.js';
import { registrySourceField, resolveRegistrySource, type RegistrySource } from '../../shared/registry/source.js';
import { MAX_LANES } from '../../shared/tunnel/datagram/lanes.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface HeadendConfig {
  /** The tunnel listener; `backlog` is the kernel's accept queue (capped by net.core.somaxconn). */
  listen: HostPort & {
    backlog: number;
    maxConnections: number;
    maxPerSource: number;
    /** Admission pacing (core/pacing.ts): TLS handshakes at once, the queue for a slot, the start rate. */
    maxHandshakes: number;
    maxQueued: number;
    maxWaitMs: number;
    acceptPerS: number;
    acceptBurst: number;
  };
  tls: {
    certFile: string;
    keyFile: string;
    deviceCaFile: string;
    /** TLS 1.3 ticket keys shared by the headends (core/ticket-keys.ts); null: per-process keys. */
    ticketKeysFile: string | null;
    /** How long a session ticket resumes, seconds. */
    ticketLifetimeS: number;
  };
  registry: RegistrySource;
  auditLogFile: string;
  /** A file off the host (another machine's mount, an append-only store) that receives every audit checkpoint. */
  auditSinkFile: string | null;
  /** The live audit file is rotated (signed, renamed `<log>.NNNNNN`, chain continued) at this size; 0: never. */
  auditRotateMiB: number;
  /** null: no metrics endpoint. */
  metrics: HostPort | null;
  /**
   * `coalesce`: runs of one flow's TCP segments read together from a VTEP go to a session on TLS that
   * negotiated OFFLOAD records as one record (forwarder.ts fromVtepBatch); userspace engine.
   */
  vxlan: { localAddress: string; port: number; vtepPort: number; coalesce: boolean };
  /**
   * The EVPN fabric option (docs/ha.md): session MACs published on kernel bridge port `port` (`{vni}`
   * replaced) for FRR to advertise, refreshed every `refreshS`. null: flood-and-learn only.
   */
  evpn: { port: string; refreshS: number } | null;
  /**
   * Who switches frames (docs/headend.md): `userspace`, this process (learning and VXLAN in
   * forwarder.ts), or `kernel`, a Linux bridge and vxlan device per segment with each session a TAP port
   * (adapters/kernel-switch.ts; needs root or CAP_NET_ADMIN). `prefix` names the devices.
   */
  l2: { engine: 'userspace' | 'kernel'; prefix: string };
  /** Processes serving sessions (kernel engine only): a primary owns audit, metrics and devices, workers the sessions. */
  workers: number;
  session: {
    keepaliveMs: number;
    deadAfterMs: number;
    helloTimeoutMs: number;
    /** Bytes a session's TLS socket may hold unsent before frames to it wait in its queue. */
    maxBufferedBytes: number;
    /** Frames a session's queue holds at most (memory bound; a full queue drops its oldest). */
    maxQueueFrames: number;
    /** CoDel (RFC 8289) on each session's queue toward the device. */
    aqm: { targetMs: number; intervalMs: number };
    /** Unread bytes behind a read that count as a standing receive backlog (receive-side CoDel); 0: off. */
    rxAqmTargetBytes: number;
  };
  /** `maxProtocol`: the highest tunnel protocol version accepted (1 or 2; 1 rolls back to v1 framing). */
  tunnel: { maxProtocol: 1 | 2 };
  mac: { ageMs: number; maxEntriesPerSegment: number };
  /** IP MTU a VTEP path needs for 1514-byte inner frames: 1514 + 8 VXLAN + 8 UDP + 20 IPv4 = 1550. */
  minVtepPathMtu: number;
  /**
   * The datagram data channel (docs/datagram.md): UDP on this address and port; null: TLS only. `lanes`:
   * the most lanes a session may have when its agent asks (its first peer id included; 1: none).
   */
  datagram: (HostPort & { portExplicit: boolean; lanes: number }) | null;
  /** After a large, settled drop in sessions: a full collection and malloc_trim (core/memory-return.ts). */
  returnMemory: boolean;
  /**
   * The datagram and VXLAN sockets send from threads of their own, off the event loop (`sendThreads`,
   * default off: it takes 7-13 % off the loop for about 10 % more CPU in all; docs/performance.md).
   */
  sendThreads: boolean;
  headendVersion: string;
  /** This headend's name in its audit log and metrics (several serve one registry); null: the host name. */
  instance: string | null;
}

export const HEADEND_DEFAULTS = Object.freeze({
  listenHost: '0.0.0.0',
  listenPort: 443,
  // About 250,000 session records a file: small enough to archive and verify one at a time.
  auditRotateMiB: 64,
  // A fleet reconnecting at once (a headend restart) must not overflow the accept queue: Node's 511 did.
  listenBacklog: 4_096,
  maxConnections: 20_000,
  // High: many Connectors share one address behind a carrier-grade NAT.
  maxPerSource: 1_000,
  // A full handshake is 3-4 ms of CPU on the loop every session shares (this project's load tool, a
  // shared 2-core box): starting at most acceptPerS a second (a few per 10 ms tick) keeps the loop's
  // delay low; size it to about half a core of the headend's handshake cost. maxHandshakes only bounds
  // memory: a slot is held for the client's whole handshake (WAN round trips, a slow client), so fewer
  // slots than rate x handshake time throttle below the rate (128 did, in the load tool). A connection
  // waits for a slot at most 5 s, inside the agent's 15 s connect timeout, so its client is still there.
  maxHandshakes: 1_024,
  maxQueued: 4_096,
  maxWaitMs: 5_000,
  acceptPerS: 300,
  acceptBurst: 10,
  // A day: a fleet restarted within it resumes; TLS 1.3 allows at most seven.
  ticketLifetimeS: 86_400,
  vxlanLocalAddress: '0.0.0.0',
  keepaliveMs: 5_000,
  deadAfterMs: 15_000,
  helloTimeoutMs: 10_000,
  maxBufferedBytes: 256 * 1024,
  maxQueueFrames: 1_024,
  aqmTargetMs: 5,
  aqmIntervalMs: 100,
  // About 1 ms of a gigabit: a backlog above it for a whole interval is the headend falling behind.
  rxAqmTargetBytes: 128 * 1024,
  macAgeS: 300,
  maxEntriesPerSegment: 8_192,
  minVtepPathMtu: 1_550,
});

const port = (min = 0) => integer(min, 65_535);

/** The document as written (docs/headend.md); parseHeadendConfig resolves paths and units. */
const HEADEND_SCHEMA = object({
  listen: section({
    host: optional(string(), HEADEND_DEFAULTS.listenHost),
    port: optional(port(), HEADEND_DEFAULTS.listenPort),
    backlog: optional(integer(16, 65_535), HEADEND_DEFAULTS.listenBacklog),
    maxConnections: optional(integer(1, 1_000_000), HEADEND_DEFAULTS.maxConnections),
    maxPerSource: optional(integer(1, 1_000_000), HEADEND_DEFAULTS.maxPerSource),
    maxHandshakes: optional(integer(1, 100_000), HEADEND_DEFAULTS.maxHandshakes),
    maxQueued: optional(integer(0, 1_000_000), HEADEND_DEFAULTS.maxQueued),
    maxWaitMs: optional(integer(0, 600_000), HEADEND_DEFAULTS.maxWaitMs),
    acceptPerS: optional(integer(1, 1_000_000), HEADEND_DEFAULTS.acceptPerS),
    acceptBurst: optional(integer(1, 1_000_000), HEADEND_DEFAULTS.acceptBurst),
  }),
  tls: object({
    cert: string(),
    key: string(),
    deviceCa: string(),
    ticketKeys: optional(string()),
    ticketLifetimeS: optional(integer(60, 7 * 86_400), HEADEND_DEFAULTS.ticketLifetimeS),
  }),
  registry: registrySourceField(),
  auditLog: string(),
  auditSink: optional(string()),
  auditRotateMiB: optional(integer(0, 1_048_576), HEADEND_DEFAULTS.auditRotateMiB),
  metrics: optional(nullable(object({ host: optional(string(), '127.0.0.1'), port: port() })), null),
  vxlan: section({
    localAddress: optional(string(), HEADEND_DEFAULTS.vxlanLocalAddress),
    port: optional(port(), VXLAN_UDP_PORT),
    vtepPort: optional(port(1), VXLAN_UDP_PORT),
    coalesce: optional(boolean(), true),
  }),
  evpn: optional(nullable(object({ port: string(), refreshS: optional(integer(5, 3_600), 60) })), null),
  l2: section({ engine: optional(oneOf(['userspace', 'kernel']), 'userspace'), prefix: optional(string(), 'ck') }),
  workers: optional(integer(1, 64), 1),
  session: section({
    keepaliveMs: optional(integer(100, 600_000), HEADEND_DEFAULTS.keepaliveMs),
    deadAfterMs: optional(integer(300, 3_600_000), HEADEND_DEFAULTS.deadAfterMs),
    helloTimeoutMs: optional(integer(100, 600_000), HEADEND_DEFAULTS.helloTimeoutMs),
    maxBufferedBytes: optional(integer(16 * 1024, 64 * 1024 * 1024), HEADEND_DEFAULTS.maxBufferedBytes),
    maxQueueFrames: optional(integer(16, 65_536), HEADEND_DEFAULTS.maxQueueFrames),
    aqm: section({
      targetMs: optional(integer(1, 1_000), HEADEND_DEFAULTS.aqmTargetMs),
      intervalMs: optional(integer(10, 10_000), HEADEND_DEFAULTS.aqmIntervalMs),
    }),
    rxAqmTargetBytes: optional(integer(0, 64 * 1024 * 1024), HEADEND_DEFAULTS.rxAqmTargetBytes),
  }),
  tunnel: section({ maxProtocol: optional(integer(1, 2), 2) }),
  mac: section({
    ageS: optional(integer(10, 86_400), HEADEND_DEFAULTS.macAgeS),
    maxEntriesPerSegment: optional(integer(16, 1_000_000), HEADEND_DEFAULTS.maxEntriesPerSegment),
  }),
  minVtepPathMtu: optional(integer(576, 9_216), HEADEND_DEFAULTS.minVtepPathMtu),
  returnMemory: optional(boolean(), true),
  sendThreads: optional(boolean(), false),
  // UDP beside the TLS listener: by default the same address and port number (443 UDP beside 443 TCP).
  datagram: section({
    enabled: optional(boolean(), true),
    host: optional(string()),
    port: optional(port()),
    lanes: optional(integer(1, MAX_LANES), 4),
  }),
  headendVersion: optional(string(), '0.1.0'),
  instance: optional(string()),
});

const fail = (i: SchemaIssue): never => {
  throw new ConfigError(formatPath(i.path), i.problem);
};

export function parseHeadendConfig(doc: unknown, baseDir: string): HeadendConfig {
  const c = parseWith(HEADEND_SCHEMA, doc, fail);
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (c.session.deadAfterMs <= c.session.keepaliveMs) {
    throw new ConfigError('session.deadAfterMs', `must be larger than session.keepaliveMs (${c.session.keepaliveMs})`);
  }
  const prefixProblem = checkPrefix(c.l2.prefix);
  if (prefixProblem) throw new ConfigError('l2.prefix', prefixProblem);
  if (c.l2.engine === 'kernel') {
    // One kernel vxlan socket both receives and sends on its port.
    if (c.vxlan.port !== c.vxlan.vtepPort)
      throw new ConfigError('vxlan.port', `must equal vxlan.vtepPort (${c.vxlan.vtepPort}) with l2.engine "kernel"`);
    // FRR reads the kernel bridges itself; the feed of session MACs is the userspace engine's.
    if (c.evpn !== null) throw new ConfigError('evpn', 'is for l2.engine "userspace"; with "kernel", point FRR at the segment bridges');
  }
  if (c.workers > 1 && c.l2.engine !== 'kernel') {
    throw new ConfigError('workers', 'more than 1 needs l2.engine "kernel": sessions on different workers meet in the kernel bridge');
  }
  return Object.freeze({
    listen: Object.freeze(c.listen),
    tls: Object.freeze({
      certFile: path(c.tls.cert),
      keyFile: path(c.tls.key),
      deviceCaFile: path(c.tls.deviceCa),
      ticketKeysFile: c.tls.ticketKeys === undefined ? null : path(c.tls.ticketKeys),
      ticketLifetimeS: c.tls.ticketLifetimeS,
    }),
    registry: resolveRegistrySource(c.registry, baseDir),
    auditLogFile: path(c.auditLog),
    auditSinkFile: c.auditSink === undefined ? null : path(c.auditSink),
    auditRotateMiB: c.auditRotateMiB,
    metrics: c.metrics === null ? null : Object.freeze(c.metrics),
    vxlan: Object.freeze(c.vxlan),
    evpn: c.evpn === null ? null : Object.freeze(c.evpn),
    l2: Object.freeze({ engine: c.l2.engine, prefix: c.l2.prefix }),
    workers: c.workers,
    session: Object.freeze(c.session),
    tunnel: Object.freeze({ maxProtocol: c.tunnel.maxProtocol === 1 ? (1 as const) : (2 as const) }),
    mac: Object.freeze({ ageMs: c.mac.ageS * 1_000, maxEntriesPerSegment: c.mac.maxEntriesPerSegment }),
    minVtepPathMtu: c.minVtepPathMtu,
    returnMemory: c.returnMemory,
    sendThreads: c.sendThreads,
    datagram:
      c.datagram.enabled === false
        ? null
        : Object.freeze({
            host: c.datagram.host ?? c.listen.host,
            port: c.datagram.port ?? c.listen.port,
            portExplicit: c.datagram.port !== undefined,
            lanes: c.datagram.lanes,
          }),
    headendVersion: c.headendVersion,
    instance: c.instance ?? null,
  });
}

/** Parses config text; JSON errors become a ConfigError pointing at the file. */
export function parseHeadendConfigText(text: string, file: string, baseDir: string): HeadendConfig {
  const doc = parseJsonText(text, (problem, cause) => {
    throw new ConfigError(file, problem, { cause });
  });
  return parseHeadendConfig(doc, baseDir);
}
