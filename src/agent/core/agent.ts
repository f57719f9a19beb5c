// SPDX-License-Identifier: UNLICENSED
// The agent's life cycle: status first (so an installer can see why it waits), then identity, then the
// TAP on the bridge, then the tunnel and the data path. Every dependency is passed in; main.ts picks the
// real ones, test/unit/agent/core/agent.test.ts in-memory ones on a manual clock.
import type { AgentConfig } from './config.js';
import { Forwarder } from './forwarder.js';
import { L2Policy } from './l2/policy.js';
import { policyStatus } from './l2/policy-status.js';
import { announceLanOnAttach } from './l2/announcements.js';
import { ownAddressUpdater, type OwnAddresses } from './own-addresses.js';
import { vlanTrunk, type VlanTrunk } from './vlan-trunk.js';
import { healthDoc } from './ota/health.js';
import type { FrameDevice, IdentitySource, OtaChannel, OtaContext, StatusServer, TunnelIdentity, TunnelLink } from './ports.js';
import type { StatusDoc } from './status-format.js';
import type { Logger } from '../../shared/log.js';
import { macToString } from '../../shared/l2/mac.js';
import type { Cancel, Clock, Scheduler } from '../../shared/ports.js';

export interface AgentDeps {
  config: AgentConfig;
  version: string;
  /** This process's id, for the status document. */
  pid: number;
  log: Logger;
  clock: Clock;
  scheduler: Scheduler;
  identity: IdentitySource;
  openTap(): Promise<FrameDevice>;
  attachTap(): Promise<void>;
  readOwnAddresses(): Promise<OwnAddresses>;
  /** The tunnel session of the untagged LAN (no `vlan`) or of one VLAN of the trunk. */
  createTunnel(getIdentity: () => Promise<TunnelIdentity>, vlan?: number): TunnelLink;
  serveStatus(snapshot: () => StatusDoc): Promise<StatusServer>;
  /** The OTA channel, when configured; started once the tunnel is running. */
  startOta?: (ctx: OtaContext) => OtaChannel;
}

export interface RunningAgent {
  stop(): Promise<void>;
  status(): StatusDoc;
  /** Settles when bring-up is complete; rejects when it failed (the caller exits so procd restarts it). */
  readonly up: Promise<void>;
}

/** Housekeeping of the Layer-2 tables and re-originated announcements. */
export const TICK_MS = 1000;
/** How often the bridge's own addresses are read again (DHCP, SLAAC). */
export const OWN_ADDRESS_REFRESH_MS = 10_000;

export async function startAgent(deps: AgentDeps): Promise<RunningAgent> {
  const { log, clock } = deps;
  const started = clock.now();
  let phase = 'starting';
  let reason: string | undefined;
  let tap: FrameDevice | undefined;
  let tunnel: TunnelLink | undefined;
  let forwarder: Forwarder | undefined;
  let ota: OtaChannel | undefined;
  let trunk: VlanTrunk | undefined;
  const policy = new L2Policy(deps.config.l2, {}, started);
  // Every alarm episode is logged when it starts and when it ends, with its figures: on site `logread`
  // is where a technician looks for a split brain or a rate limit.
  const logAlarms = (p: L2Policy, vlan?: number): void => {
    p.alarms.onChange = (what, a) => {
      const fields = {
        code: a.code,
        severity: a.severity,
        subject: a.subject,
        ...(vlan !== undefined ? { vlan } : {}),
        ...(a.message ? { detail: a.message } : {}),
      };
      if (what === 'raised') log.warn(`alarm raised: ${a.code}`, fields);
      else log.info(`alarm cleared: ${a.code}`, { ...fields, count: a.count, lastedS: Math.round((a.lastMs - a.firstMs) / 1000) });
    };
  };
  logAlarms(policy);
  // One context per VLAN of the trunk: its own MAC table, neighbours, buckets, alarms and session.
  const vlans = deps.config.vlans.map((v) => ({
    ...v,
    policy: new L2Policy(deps.config.l2, {}, started),
    tunnel: undefined as TunnelLink | undefined,
    forwarder: undefined as Forwarder | undefined,
  }));
  for (const v of vlans) logAlarms(v.policy, v.vid);
  const setOwn = ownAddressUpdater(policy, deps.config.l2);
  // On every attach (a failover lands on another headend): the site's hosts announced at once, not at the next tick.
  const reannounce = (p: L2Policy, f: Forwarder | undefined, headend: string | undefined): void => {
    const n = announceLanOnAttach(p, clock.now());
    f?.tick();
    if (n > 0) log.info('announcing the LAN hosts to the datacentre', { hosts: n, headend });
  };
  const timers: Cancel[] = [];
  let stopped = false;

  const status = (): StatusDoc => {
    const now = clock.now();
    const l2 = policyStatus(policy, now);
    return {
      version: deps.version,
      pid: deps.pid,
      uptimeS: Math.round((now - started) / 1000),
      phase,
      ...(reason ? { reason } : {}),
      identity: deps.identity.status(),
      ...(tunnel ? { tunnel: tunnel.status() } : {}),
      counters: { forwarder: forwarder?.counters ?? {}, core: l2.counters, ...(tap?.stats ? { tap: tap.stats } : {}) },
      macTable: l2.macTable,
      neighbours: l2.neighbours,
      alarms: l2.alarms,
      ...(ota ? { ota: ota.status() } : {}),
      ...(vlans.length > 0 ? { vlans: vlans.map((v) => vlanStatus(v, now)) } : {}),
    };
  };
  const vlanStatus = (v: (typeof vlans)[number], now: number): Record<string, unknown> => {
    const l2v = policyStatus(v.policy, now);
    return {
      vlan: v.vid,
      name: v.name,
      ...(v.tunnel ? { tunnel: v.tunnel.status() } : {}),
      counters: {
        trunk: { popped: trunk?.counters.popped[v.vid] ?? 0, pushed: trunk?.counters.pushed[v.vid] ?? 0 },
        forwarder: v.forwarder?.counters ?? {},
        core: l2v.counters,
      },
      macTable: l2v.macTable,
      alarms: l2v.alarms,
    };
  };
  const statusServer = await deps.serveStatus(status);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // After a failed bring-up this only releases what was opened: the status keeps saying `failed`, and
    // the log says why (the caller's `agent failed`), not that the agent stopped cleanly.
    const failed = phase === 'failed';
    if (!failed) phase = 'stopping';
    for (const cancel of timers) cancel();
    await ota?.close();
    for (const v of vlans) await v.tunnel?.close();
    await tunnel?.close();
    await tap?.close();
    await deps.identity.close();
    await statusServer.close();
    if (!failed) log.info('agent stopped');
  };

  const bringUp = async (): Promise<void> => {
    try {
      phase = 'identity';
      reason = 'waiting for an operational identity';
      await deps.identity.ready();
      if (stopped) return;
      reason = undefined;
      if (deps.config.headends.length === 0) {
        phase = 'idle';
        reason = 'no headend configured: add `list headend tls://host:port` to `config agent` in /etc/connector';
        log.warn('no headend configured; the tunnel stays down', { reason });
        return;
      }

      phase = 'attaching';
      tap = await deps.openTap();
      await deps.attachTap();
      const refreshOwn = async (): Promise<void> => {
        const own = await deps.readOwnAddresses();
        setOwn(own);
        log.debug('own addresses', { macs: own.macs.map((m) => macToString(m)).join(','), ipv4: own.ipv4.join(',') });
      };
      await refreshOwn();

      if (vlans.length > 0)
        trunk = vlanTrunk(
          tap,
          vlans.map((v) => v.vid),
        );
      tunnel = deps.createTunnel(() => deps.identity.current());
      forwarder = new Forwarder(trunk?.untagged ?? tap, tunnel, policy, clock, { lanCoalesce: deps.config.lanCoalesce });
      forwarder.start();
      tunnel.onStateChange((state, info) => {
        log.info('tunnel state', { state, headend: info.headend, reason: info.reason });
        if (state === 'up' && tunnel) {
          reannounce(policy, forwarder, info.headend);
          const granted = tunnel.peerCapabilities().includes('dhcp-from-dc');
          policy.setDhcpFromDc(granted, deps.config.l2.allowDhcpFromTunnel);
          if (granted) log.info('the datacentre segment may serve DHCP to the LAN (allowDhcpFromDc)');
        }
      });
      for (const v of vlans) {
        if (!trunk) break;
        const t = deps.createTunnel(() => deps.identity.current(), v.vid);
        v.tunnel = t;
        v.forwarder = new Forwarder(trunk.device(v.vid), t, v.policy, clock, { lanCoalesce: deps.config.lanCoalesce });
        v.forwarder.start();
        t.onStateChange((state, info) => {
          log.info('tunnel state', { vlan: v.vid, name: v.name, state, headend: info.headend, reason: info.reason });
          if (state === 'up') reannounce(v.policy, v.forwarder, info.headend);
          if (state === 'up') v.policy.setDhcpFromDc(t.peerCapabilities().includes('dhcp-from-dc'), deps.config.l2.allowDhcpFromTunnel);
        });
      }
      tunnel.start();
      for (const v of vlans) v.tunnel?.start();
      phase = 'running';
      const link = tunnel;
      if (deps.startOta)
        ota = deps.startOta({
          identity: () => deps.identity.current(),
          tunnelUp: () => link.state === 'up',
          health: () => healthDoc(status(), new Date(clock.now())),
        });
      const fwd = forwarder;
      timers.push(
        deps.scheduler.setInterval(() => {
          fwd.tick();
          for (const v of vlans) v.forwarder?.tick();
        }, TICK_MS),
      );
      timers.push(
        deps.scheduler.setInterval(() => {
          refreshOwn().catch((e: unknown) => log.warn('cannot read own addresses', { error: String(e) }));
        }, OWN_ADDRESS_REFRESH_MS),
      );
      log.info('agent running', {
        tap: deps.config.tapName,
        bridge: deps.config.bridge,
        headends: deps.config.headends.map((u) => u.host).join(','),
        vlans: vlans.map((v) => `${v.vid}:${v.name}`).join(','),
      });
    } catch (e) {
      if (stopped) return; // SIGTERM while waiting (e.g. for enrollment): not a failure
      phase = 'failed';
      reason = e instanceof Error ? e.message : String(e);
      await stop();
      throw e;
    }
  };
  const up = bringUp();
  up.catch(() => {}); // observed by the caller through `up`
  return { stop, status, up };
}
