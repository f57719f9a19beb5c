// SPDX-License-Identifier: UNLICENSED
// The headend's orchestration, pure: admission of connections that completed TLS (admission.ts), one
// tunnel session per admitted device (the shared session core, role 'server'), the switch (l2-switch.ts),
// registry changes, metrics and the audit trail. Sockets, switch, audit file and timers are ports.
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Clock, Scheduler, WallClock } from '../../shared/ports.js';
import type { Registry } from '../../shared/registry/registry.js';
import { deviceCount } from '../../shared/registry/devices-overlay.js';
import type { HelloAckMessage, HelloMessage } from '../../shared/tunnel/control.js';
import { TunnelSession, type TunnelTransport } from '../../shared/tunnel/session.js';
import { applySegmentChange, SegmentBook } from './segment-changes.js';
import { admit, admitVlan, closedByRegistry, helloVlan, mtuFindings, type PeerCertificate, type SessionIdentity } from './admission.js';
import type { AuditEvent, AuditFields } from '../../shared/audit/chain.js';
import type { HeadendConfig } from './config.js';
import { Forwarder, type VtepPort } from './forwarder.js';
import type { InetSum } from '../../shared/l2/tso-segment.js';
import type { L2Switch } from './l2-switch.js';
import { headendMetrics, type Metrics } from './metrics.js';
import { SEGMENT_FAMILIES, segmentFamilies, SLICE } from './segment-metrics.js';
import type { DatagramPort } from './datagram-port.js';
import type { HeadendSessionInfo } from './session-info.js';
import { RTT_SLICE_MS, RttProbe } from './rtt-probe.js';
export type { DatagramPort } from './datagram-port.js';

/** The longest stretch a scrape holds the loop before it lets the sessions' I/O run. */
const SCRAPE_SLICE_MS = 2;

export interface HeadendPorts {
  log: Logger;
  /** Appends one audit line; may throw (disk full), which is counted and logged, never fatal. */
  audit(event: AuditEvent, fields: AuditFields): void;
  clock: Clock;
  wallClock: WallClock;
  scheduler: Scheduler;
  /** The userspace switch's VXLAN egress; unused with `l2`. */
  vtep?: VtepPort;
  /** The switch; absent: the userspace one (forwarder.ts) over `vtep`. */
  l2?: L2Switch;
  /** Default: 8 random bytes in hex. */
  newSessionId?: () => string;
  /** The datagram channel (adapters/datagram-server.ts); absent: every session carries its data in TLS. */
  datagram?: DatagramPort;
  /** The checksum sum for coalescing toward sessions (the addon's C one); absent: TypeScript's. */
  inetSum?: InetSum;
}

export interface AdmittedSession {
  readonly identity: SessionIdentity;
  readonly tunnel: TunnelSession;
  readonly startedAtMs: number;
  /** The hello was answered: the segment (and VLAN) are decided and audited. */
  readonly connected: boolean;
}

export type { HeadendSessionInfo } from './session-info.js';

/** One session per device and VLAN: a newer one replaces the older, other VLANs' sessions stay. */
const sessionKey = (i: Pick<SessionIdentity, 'serial' | 'vlan'>): string => (i.vlan ? `${i.serial}#${i.vlan}` : i.serial);

export class HeadendCore {
  readonly metrics: Metrics = headendMetrics();
  /** The userspace switch when it is the one in use (main.ts feeds it the VTEPs' frames); else null. */
  readonly forwarder: Forwarder | null;
  readonly l2: L2Switch;
  readonly #config: HeadendConfig;
  readonly #p: HeadendPorts;
  readonly #log: Logger;
  readonly #drops = new Map<string, number>();
  /** Egress-queue drops of the sessions already closed (live sessions are summed at each scrape). */
  readonly #closedQueueDrops = { aqm: 0, overflow: 0 };
  readonly #sessions = new Map<string, AdmittedSession>();
  readonly #bySerial = new Map<string, AdmittedSession>();
  #registry: Registry;
  readonly #segmentBook = new SegmentBook();
  #expiryCancel: (() => void) | undefined;
  readonly #rtt = new RttProbe();
  /** Runs while there are sessions: no timer in a headend without any. */
  #rttCancel: (() => void) | undefined;

  constructor(config: HeadendConfig, registry: Registry, ports: HeadendPorts) {
    this.#config = config;
    this.#p = ports;
    this.#log = ports.log;
    this.#registry = registry;
    if (!ports.l2 && !ports.vtep) throw new TypeError('HeadendCore needs ports.l2 or ports.vtep');
    const mac = { ageMs: config.mac.ageMs, maxEntries: config.mac.maxEntriesPerSegment };
    this.forwarder = ports.l2
      ? null
      : new Forwarder(ports.vtep as VtepPort, mac, () => ports.clock.now(), {
          coalesce: config.vxlan.coalesce,
          ...(ports.inetSum ? { sum: ports.inetSum } : {}),
        });
    this.l2 = ports.l2 ?? (this.forwarder as Forwarder);
    this.applyRegistry(registry, 'start');
  }

  countDrop(reason: string): void {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + 1);
  }

  /** A connection refused before admission (TLS handshake, ALPN, no certificate). */
  refuse(reason: string): void {
    this.metrics.inc('connector_headend_refusals_total', { reason });
  }

  audit(event: AuditEvent, fields: AuditFields): void {
    // A failing audit write (disk full) must not take the data path down with it: log loudly and count.
    try {
      this.#p.audit(event, fields);
    } catch (e) {
      this.metrics.inc('connector_headend_audit_errors_total');
      this.#log.error('audit write failed', { error: errorMessage(e), cause: errorMessage((e as Error).cause) });
    }
  }

  /**
   * A connection with a client certificate: refused (the caller tells the peer why and closes it), or
   * admitted as a session over `transport` that replaces the device's older one. The caller feeds the
   * transport's reads to the session and opens it.
   */
  connect(peer: PeerCertificate, transport: TunnelTransport): { ok: true; session: TunnelSession } | { ok: false; reason: string } {
    const id = this.#p.newSessionId?.() ?? randomBytes(8).toString('hex');
    const a = admit(this.#registry, peer, id);
    if (!a.ok) {
      this.refuse(a.reason);
      this.#log.warn('refused', { remote: peer.remote, serial: peer.serial, reason: a.reason, fingerprint: peer.fingerprint });
      this.audit('refused', { serial: peer.serial, remote: peer.remote, fingerprint: peer.fingerprint, reason: a.reason });
      return a;
    }
    // The segment is decided at the hello: a trunk unit opens one session per VLAN and names it there.
    const admitted = a.identity;
    const entry: { identity: SessionIdentity; tunnel: TunnelSession; startedAtMs: number; connected: boolean } = {
      identity: admitted,
      tunnel: undefined as unknown as TunnelSession,
      startedAtMs: this.#p.wallClock.now(),
      connected: false,
    };
    const c = this.#config.session;
    const log = this.#log.child({ session: id, serial: admitted.serial });
    this.metrics.inc('connector_headend_sessions_total');
    const { serial: aSerial, tenant: aTenant, remote: aRemote, fingerprint: aFp } = admitted;
    this.#log.info('session admitted', { session: id, serial: aSerial, tenant: aTenant, remote: aRemote, fingerprint: aFp });
    let datagramOffered = false;
    const onHello = (hello: HelloMessage): Pick<HelloAckMessage, 'vni' | 'capabilities'> | string => {
      const vlan = helloVlan(hello.capabilities);
      const d = vlan === 'bad' ? ({ ok: false, reason: 'vlan-invalid' } as const) : admitVlan(this.#registry, admitted, vlan);
      if (!d.ok) {
        this.refuse(d.reason);
        log.warn('refused', { remote: peer.remote, reason: d.reason, capabilities: hello.capabilities.join(',') });
        this.audit('refused', { serial: admitted.serial, remote: peer.remote, fingerprint: peer.fingerprint, reason: d.reason });
        return d.reason;
      }
      const identity = d.identity;
      entry.identity = identity;
      entry.connected = true;
      const key = sessionKey(identity);
      const old = this.#bySerial.get(key);
      if (old) old.tunnel.close('replaced', 'replaced');
      this.#bySerial.set(key, entry);
      const { serial, tenant, segmentName, vni, remote, fingerprint } = identity;
      this.audit('connect', {
        sessionId: id,
        serial,
        tenant,
        segment: segmentName,
        vni,
        ...(identity.vlan ? { vlan: identity.vlan } : {}),
        remote,
        fingerprint,
      });
      this.#log.info('session segment', { session: id, serial, tenant, segment: segmentName, vni, vlan: identity.vlan });
      // The segment's options the device must apply: its VLAN, and whether DHCP from the DC may reach the LAN.
      const dhcp = this.#registry.tenants[tenant]?.segments[segmentName]?.allowDhcpFromDc === true;
      const dg = this.#p.datagram?.offer(id, hello) ?? null;
      datagramOffered = dg !== null;
      return {
        vni,
        capabilities: [...(identity.vlan ? [`vlan:${identity.vlan}`] : []), ...(dhcp ? ['dhcp-from-dc'] : []), ...(dg ?? [])],
      };
    };
    const tunnel = new TunnelSession(
      {
        role: 'server',
        clock: this.#p.clock,
        scheduler: this.#p.scheduler,
        egress: { maxFrames: c.maxQueueFrames, holdUnsentBytes: c.maxBufferedBytes, aqm: c.aqm },
        rxAqm: { targetBytes: c.rxAqmTargetBytes, intervalMs: c.aqm.intervalMs },
        helloTimeoutMs: c.helloTimeoutMs,
        // Super-frames from v2 agents: segmented toward VTEPs, whole toward sessions that take them.
        offload: true,
        ack: {
          vni: admitted.vni,
          sessionId: id,
          headendVersion: this.#config.headendVersion,
          keepaliveMs: c.keepaliveMs,
          deadAfterMs: c.deadAfterMs,
          capabilities: [],
        },
        onHello,
      },
      transport,
      {
        up: (s) => {
          const vni = entry.identity.vni;
          log.info('session up', { site: s.peerHello?.site, agentVersion: s.peerHello?.agentVersion, vni, vlan: entry.identity.vlan });
          if (!this.l2.attach(vni, id, s)) return s.close('l2-port', 'l2-port');
          if (datagramOffered)
            this.#p.datagram?.attach(id, s, transport, (tx, reason) => {
              const { serial, tenant } = entry.identity;
              log.info('session transport', { tx, reason });
              this.audit('transport', { sessionId: id, serial, tenant, vni, transport: tx, reason });
            });
        },
        frames: (batch) => {
          // The VNI on the records is the device's claim; the segment comes from admission only.
          const vni = entry.identity.vni;
          for (const f of batch) this.l2.fromSession(vni, id, f);
        },
        offload: (hdr, frame) => this.l2.fromSessionOffload(entry.identity.vni, id, hdr, frame),
        drop: (reason) => this.countDrop(reason),
        dgState: (msg) => {
          log.info('device transport', { tx: msg.tx, reason: msg.reason });
          this.#p.datagram?.peerState(id, msg.tx);
        },
        closed: (reason) => {
          if (datagramOffered) this.#p.datagram?.detach(id);
          const e = this.#sessions.get(id);
          if (e) this.#closed(e, reason);
        },
      },
    );
    entry.tunnel = tunnel;
    this.#sessions.set(id, entry);
    this.#rtt.add(entry);
    this.#rttCancel ??= this.#p.scheduler.setInterval(() => this.#rtt.tick(this.#p.clock.now()), RTT_SLICE_MS);
    return { ok: true, session: tunnel };
  }

  #closed(e: AdmittedSession, reason: string): void {
    const { identity: i, tunnel: t } = e;
    this.#sessions.delete(i.id);
    this.#rtt.forget(i.id);
    if (this.#sessions.size === 0) this.#rttCancel = void this.#rttCancel?.();
    // Counted like sessions_total, from TLS admission: a session that dies before its hello (garbage,
    // an oversize record, a hello timeout) is a close too, and the one operators look for.
    this.metrics.inc('connector_headend_session_closes_total', { reason: reason.split(':')[0] ?? reason });
    if (!e.connected) {
      if (reason === 'peer-closed' || reason === 'socket-error') this.metrics.inc('connector_headend_handshakes_wasted_total');
      // TLS admitted, but no session was established (hello timeout, refused VLAN, peer gone).
      if (!reason.startsWith('refused:')) {
        this.audit('refused', { serial: i.serial, remote: i.remote, fingerprint: i.fingerprint, reason: reason.split(':')[0] ?? reason });
      }
      return;
    }
    if (this.#bySerial.get(sessionKey(i)) === e) this.#bySerial.delete(sessionKey(i));
    this.l2.detach(i.vni, i.id);
    this.#closedQueueDrops.aqm += t.egress.counters.aqmDrops;
    this.#closedQueueDrops.overflow += t.egress.counters.overflowDrops;
    const c = {
      framesIn: t.counters.framesIn,
      bytesIn: t.counters.bytesIn,
      framesOut: t.egress.counters.sentFrames + t.counters.datagramFramesOut,
      bytesOut: t.egress.counters.sentBytes + t.counters.datagramBytesOut,
    };
    this.audit('disconnect', {
      sessionId: i.id,
      serial: i.serial,
      tenant: i.tenant,
      segment: i.segmentName,
      vni: i.vni,
      ...(i.vlan ? { vlan: i.vlan } : {}),
      remote: i.remote,
      fingerprint: i.fingerprint,
      site: t.peerHello?.site ?? '',
      agentVersion: t.peerHello?.agentVersion ?? '',
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      framesIn: c.framesIn,
      framesOut: c.framesOut,
      durationMs: this.#p.wallClock.now() - e.startedAtMs,
      reason,
    });
    this.#log.info('session closed', { session: i.id, serial: i.serial, reason, framesIn: c.framesIn, framesOut: c.framesOut });
  }

  /**
   * A new registry: segments and VTEPs apply, sessions it refuses or moves are closed with a bye. A parse
   * keeps the identity of every entry it did not change (registry-delta.ts), and what did not change is
   * not redone: with thousands of sessions up, every one of them waits for this loop.
   */
  applyRegistry(reg: Registry, why: string): void {
    const started = this.#p.clock.now();
    const prev = why === 'start' || why === 'sandbox-expiry' ? undefined : this.#registry;
    this.#registry = reg;
    this.#applySegments(reg, prev === undefined);
    for (const { session, reason } of closedByRegistry(reg, this.#sessions.values(), prev)) {
      if (reason !== 'segment-changed') {
        this.#log.warn('registry change refuses a connected device', {
          serial: session.identity.serial,
          reason: reason.slice('registry:'.length),
        });
      }
      session.tunnel.close(reason, reason);
    }
    this.#log.info('registry loaded', {
      why,
      tenants: Object.keys(reg.tenants).length,
      devices: deviceCount(reg.devices),
      denylist: reg.denylist.length,
      // What the change cost this loop (every session's frames waited for it).
      applyMs: Math.round((this.#p.clock.now() - started) * 100) / 100,
    });
  }

  /** The segments of the tenants a change touched (of every tenant with `all`), with their MTU findings. */
  #applySegments(reg: Registry, all: boolean): void {
    const now = this.#p.wallClock.now();
    const change = this.#segmentBook.change(reg, now, all);
    if (change.tenants.length === 0 && !change.full) return;
    applySegmentChange(this.l2, change);
    // A drill sandbox ends at its expiry: re-apply the registry then, whatever the drill tooling does.
    this.#expiryCancel?.();
    this.#expiryCancel = undefined;
    const next = this.#segmentBook.nextExpiry(now);
    // The registry in force then: a later change of units only (no tenant touched) keeps this timer.
    if (next !== undefined) {
      this.#expiryCancel = this.#p.scheduler.setTimeout(
        () => this.applyRegistry(this.#registry, 'sandbox-expiry'),
        Math.min(next - now + 1, 2 ** 31 - 1),
      );
    }
    const MTU = 'connector_headend_segment_mtu_too_small';
    for (const old of change.before.values()) for (const s of old) this.metrics.remove(MTU, { vni: s.vni, segment: s.name });
    for (const f of mtuFindings(change.tenants, reg, this.#config.minVtepPathMtu)) {
      if (!f.tooSmall) continue;
      this.metrics.set(MTU, { vni: f.vni, segment: f.segment }, 1);
      this.#log.warn('segment VTEP path MTU cannot carry 1514-byte inner frames', {
        segment: f.segment,
        vni: f.vni,
        vtepPathMtu: f.vtepPathMtu,
        needed: this.#config.minVtepPathMtu,
        fix: 'raise the fabric MTU to >= 1550 or set the tenant VM MTU to 1450',
      });
    }
  }

  /** Re-reads the registry through `read`; a broken file keeps the previous registry and counts the error. */
  reload(read: () => Registry, why: string): void {
    try {
      const reg = read();
      // The same registry again (a SIGHUP and the file watch both saw one write): nothing to redo.
      if (reg === this.#registry) this.#log.info('registry loaded', { why, unchanged: true });
      else this.applyRegistry(reg, why);
      this.metrics.inc('connector_headend_registry_reloads_total', { result: 'ok' });
    } catch (e) {
      this.metrics.inc('connector_headend_registry_reloads_total', { result: 'error' });
      this.#log.error('registry reload failed; keeping the previous registry', { error: errorMessage(e) });
    }
  }

  /**
   * The Prometheus text. By default the per-segment families are summed per tenant (a provider with
   * thousands of segments scrapes kilobytes, not megabytes, every 15 s); `detail: 'segment'` gives one
   * series per segment (GET /metrics?detail=segment). Zero-valued series are left out either way.
   */
  renderMetrics(detail: 'tenant' | 'segment' = 'tenant'): string {
    const steps = this.#render(detail);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * renderMetrics spread over turns of the loop: after each slice that took more than SCRAPE_SLICE_MS it
   * lets the sessions' I/O run. A scrape of 5,000 segments costs tens of milliseconds in all, which would
   * otherwise be one stall of every session's frames every scrape interval.
   */
  async scrapeMetrics(detail: 'tenant' | 'segment' = 'tenant'): Promise<string> {
    const steps = this.#render(detail);
    let since = this.#p.clock.now();
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (this.#p.clock.now() - since < SCRAPE_SLICE_MS) continue;
      await new Promise<void>((resume) => this.#p.scheduler.setImmediate(resume));
      since = this.#p.clock.now();
    }
  }

  *#render(detail: 'tenant' | 'segment'): Generator<void, string> {
    const m = this.metrics;
    const segments = yield* segmentFamilies(m, this.l2.segmentStats(), detail);
    for (const [reason, n] of Object.entries(this.l2.drops)) if (n > 0) this.#drops.set(`fwd:${reason}`, n);
    let { aqm, overflow } = this.#closedQueueDrops;
    let dropping = 0;
    let i = 0;
    for (const { tunnel } of this.#sessions.values()) {
      if (++i % SLICE === 0) yield;
      aqm += tunnel.egress.counters.aqmDrops;
      overflow += tunnel.egress.counters.overflowDrops;
      if (tunnel.egress.aqm.dropping) dropping++;
    }
    if (aqm > 0) this.#drops.set('queue-aqm', aqm);
    if (overflow > 0) this.#drops.set('queue-overflow', overflow);
    m.set('connector_headend_aqm_dropping_sessions', {}, dropping);
    const o = this.l2.offloadStats;
    if (o.recordsIn > 0) {
      m.set('connector_headend_offload_total', { kind: 'records-in' }, o.recordsIn);
      m.set('connector_headend_offload_total', { kind: 'whole' }, o.whole);
      m.set('connector_headend_offload_total', { kind: 'segments-out' }, o.segmentsOut);
    }
    const c = this.forwarder?.vtepCoalesce;
    if (c && (c.superFrames > 0 || c.badChecksum > 0)) {
      m.set('connector_headend_vtep_coalesce_total', { kind: 'super-frames' }, c.superFrames);
      m.set('connector_headend_vtep_coalesce_total', { kind: 'segments' }, c.segments);
      m.set('connector_headend_vtep_coalesce_total', { kind: 'bad-checksum' }, c.badChecksum);
    }
    for (const [reason, n] of this.#drops) m.set('connector_headend_drops_total', { reason: reason.replace(/^fwd:/, '') }, n);
    return m.render(SEGMENT_FAMILIES) + segments;
  }

  /** The live sessions, as `GET /sessions` on the metrics listener serves them (the console reads it). */
  sessions(): HeadendSessionInfo[] {
    return [...this.#sessions.values()].map((s) => ({
      id: s.identity.id,
      serial: s.identity.serial,
      tenant: s.identity.tenant,
      segment: s.identity.segmentName,
      vni: s.identity.vni,
      vlan: s.identity.vlan,
      state: s.tunnel.state,
      remote: s.identity.remote,
      site: s.tunnel.peerHello?.site ?? '',
      agentVersion: s.tunnel.peerHello?.agentVersion ?? '',
      startedAtMs: s.startedAtMs,
      framesIn: s.tunnel.counters.framesIn,
      framesOut: s.tunnel.egress.counters.sentFrames + s.tunnel.counters.datagramFramesOut,
      bytesIn: s.tunnel.counters.bytesIn,
      bytesOut: s.tunnel.egress.counters.sentBytes + s.tunnel.counters.datagramBytesOut,
      transport: this.#p.datagram?.transportOf(s.identity.id) ?? 'tls',
      rttMs: s.tunnel.rttMs === null ? null : Math.round(s.tunnel.rttMs * 100) / 100,
      jitterMs: this.#rtt.jitterOf(s.identity.id),
    }));
  }

  /**
   * Says bye to every session (shutdown); `retryAfterMs` asks them to spread their return over that window.
   * `leaveOpen`: the process exits next, and its exit closes the connections (no TLS close_notify and
   * shutdown for each: 150 us a connection on loopback, most of a 5,000-session SIGTERM).
   */
  closeAll(reason: string, retryAfterMs?: number, leaveOpen = false): void {
    this.#expiryCancel?.();
    for (const s of [...this.#sessions.values()]) s.tunnel.close(reason, reason, retryAfterMs, leaveOpen);
  }
}
